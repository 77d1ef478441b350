package metrics

import (
	"errors"
	"sync"

	"github.com/orchardmdm/orchard/storage"
)

// Other replaces a label value that is unknown, malformed, oversized or
// over a label's distinct-value budget.
const Other = "other"

// maxDistinct bounds the distinct values one free-form label may take.
const maxDistinct = 64

// maxLabelLen bounds one label value.
const maxLabelLen = 64

// Names of Orchard's per-address limiters, the values of orchard_rate_limited_total's label.
const (
	LimitSCEPChallenge     = "scep_challenge"
	LimitEnrollToken       = "enroll_token"
	LimitEnrollMachineInfo = "enroll_machineinfo"
)

var errNilFunc = errors.New("metrics: nil gauge func")

// Apple's check-in message types (the check-in schemas) and the statuses a
// device may report on the connect endpoint.
var (
	checkinMessageTypes = set("Authenticate", "TokenUpdate", "CheckOut", "UserAuthenticate",
		"DeclarativeManagement", "GetBootstrapToken", "SetBootstrapToken", "GetToken")
	connectStatuses = set("Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow")
	scepKinds       = set("none", storage.KindInvitation, storage.KindConfigurator, storage.KindADE,
		storage.KindProfile, storage.KindRenewal, storage.KindPortal, "admin")
	depSyncKinds = set("full", "delta")
	rateLimits   = set(LimitSCEPChallenge, LimitEnrollToken, LimitEnrollMachineInfo)
	httpMethods  = set("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
)

func set(vals ...string) map[string]bool {
	m := make(map[string]bool, len(vals))
	for _, v := range vals {
		m[v] = true
	}
	return m
}

// known returns v when it is in allowed, else Other.
func known(v string, allowed map[string]bool) string {
	if allowed[v] {
		return v
	}
	return Other
}

// boundedSet admits well-formed label values first come, first served, up
// to a limit; later new values read as Other. Values come from Orchard's own
// code paths (outcomes, reasons) or from admins and Apple (request types,
// error codes), so the budget only bites on abuse or bugs.
type boundedSet struct {
	mu   sync.RWMutex
	max  int
	ok   func(string) bool
	seen map[string]bool
}

func newBoundedSet(max int, ok func(string) bool) *boundedSet {
	return &boundedSet{max: max, ok: ok, seen: map[string]bool{}}
}

func (b *boundedSet) label(v string) string {
	if !b.ok(v) {
		return Other
	}
	b.mu.RLock()
	ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= b.max {
		return Other
	}
	b.seen[v] = true
	return v
}

// wellFormed accepts short identifiers: letters, digits and _ . : - /.
func wellFormed(v string) bool {
	if v == "" || len(v) > maxLabelLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '-', c == '/':
		default:
			return false
		}
	}
	return true
}

// wellFormedPattern accepts ServeMux patterns ("PUT /mdm/connect",
// "GET /v1/devices/{id}"): printable ASCII, bounded length.
func wellFormedPattern(v string) bool {
	if v == "" || len(v) > 2*maxLabelLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}
