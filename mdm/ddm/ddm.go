// Package ddm holds the JSON of Apple's Declarative Device Management
// protocol (the bodies inside a DeclarativeManagement check-in) and the
// hashes Orchard derives from it. It is a leaf: no transport, no storage.
// See Apple's "Declarative Device Management" documentation and the schema
// in apple-device-management/declarative/protocol.
package ddm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/mdm/osversion"
)

// Declaration kinds, as the device names them in declaration/{kind}/{id}.
const (
	KindActivation    = "activation"
	KindAsset         = "asset"
	KindConfiguration = "configuration"
	KindManagement    = "management"
)

// TypeSoftwareUpdateSpecific enforces one OS version by a local deadline.
const TypeSoftwareUpdateSpecific = "com.apple.configuration.softwareupdate.enforcement.specific"

// Declaration is one declaration as the device fetches it.
type Declaration struct {
	Type        string          `json:"Type"`
	Identifier  string          `json:"Identifier"`
	ServerToken string          `json:"ServerToken"`
	Payload     json.RawMessage `json:"Payload"`
}

// Kind is the declaration's kind from its type (com.apple.configuration.x
// is a configuration); "" for a type outside Apple's four.
func Kind(declType string) string {
	for _, k := range []string{KindActivation, KindAsset, KindConfiguration, KindManagement} {
		if strings.HasPrefix(declType, "com.apple."+k+".") {
			return k
		}
	}
	return ""
}

// ContentToken is the ServerToken of a declaration: a hash of its type,
// identifier and payload, so it changes exactly when the content does.
func ContentToken(declType, identifier string, payload []byte) string {
	h := sha256.New()
	for _, p := range [][]byte{[]byte(declType), []byte(identifier), payload} {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// ManifestItem is one line of the declaration-items answer.
type ManifestItem struct {
	Identifier  string `json:"Identifier"`
	ServerToken string `json:"ServerToken"`
}

// Manifest is the declaration-items answer (DeclarationItemsResponse).
type Manifest struct {
	Declarations struct {
		Activations    []ManifestItem `json:"Activations"`
		Assets         []ManifestItem `json:"Assets"`
		Configurations []ManifestItem `json:"Configurations"`
		Management     []ManifestItem `json:"Management"`
	} `json:"Declarations"`
	DeclarationsToken string `json:"DeclarationsToken"`
}

// NewManifest sorts decls into a manifest and sets its token, a hash of
// every identifier and server token in it.
func NewManifest(decls []Declaration) *Manifest {
	m := &Manifest{}
	d := &m.Declarations
	d.Activations, d.Assets, d.Configurations, d.Management = []ManifestItem{}, []ManifestItem{}, []ManifestItem{}, []ManifestItem{}
	sorted := append([]Declaration(nil), decls...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Identifier < sorted[j].Identifier })
	h := sha256.New()
	for _, x := range sorted {
		it := ManifestItem{Identifier: x.Identifier, ServerToken: x.ServerToken}
		switch Kind(x.Type) {
		case KindActivation:
			d.Activations = append(d.Activations, it)
		case KindAsset:
			d.Assets = append(d.Assets, it)
		case KindConfiguration:
			d.Configurations = append(d.Configurations, it)
		case KindManagement:
			d.Management = append(d.Management, it)
		default:
			continue
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", x.Type, x.Identifier, x.ServerToken)
	}
	m.DeclarationsToken = hex.EncodeToString(h.Sum(nil))[:32]
	return m
}

// SyncTokens is what tokens answers and what the DeclarativeManagement
// command carries.
type SyncTokens struct {
	DeclarationsToken string `json:"DeclarationsToken"`
	Timestamp         string `json:"Timestamp"`
}

// TokensResponse is the tokens answer.
type TokensResponse struct {
	SyncTokens SyncTokens `json:"SyncTokens"`
}

// Timestamp formats t as the protocol's RFC 3339 UTC time.
func Timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Endpoint is a parsed DeclarativeManagement Endpoint.
type Endpoint struct {
	Name       string // tokens, declaration-items, declaration, status
	Kind       string // for declaration
	Identifier string // for declaration
}

// ErrEndpoint: the endpoint is not one of the protocol's.
var ErrEndpoint = errors.New("unknown declarative management endpoint")

// ParseEndpoint reads tokens, declaration-items, status or
// declaration/{kind}/{identifier} (the identifier may be escaped).
func ParseEndpoint(s string) (Endpoint, error) {
	switch s {
	case "tokens", "declaration-items", "status":
		return Endpoint{Name: s}, nil
	}
	rest, ok := strings.CutPrefix(s, "declaration/")
	if !ok {
		return Endpoint{}, fmt.Errorf("%w: %.64q", ErrEndpoint, s)
	}
	kind, id, ok := strings.Cut(rest, "/")
	if !ok || Kind("com.apple."+kind+".x") == "" {
		return Endpoint{}, fmt.Errorf("%w: %.64q", ErrEndpoint, s)
	}
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	if id == "" {
		return Endpoint{}, fmt.Errorf("%w: empty identifier", ErrEndpoint)
	}
	return Endpoint{Name: "declaration", Kind: kind, Identifier: id}, nil
}

// Validation errors wrap ErrInvalid.
var ErrInvalid = errors.New("invalid declaration")

var localDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$`)

// MaxPayload bounds a declaration's payload.
const MaxPayload = 64 << 10

// Validate checks a declaration an admin gives: a type of Apple's four
// kinds, an identifier, a JSON object payload, and for the software-update
// enforcement its keys and formats.
func Validate(declType, identifier string, payload []byte) error {
	if Kind(declType) == "" {
		return fmt.Errorf("%w: type %.80q is not com.apple.{activation,asset,configuration,management}.*", ErrInvalid, declType)
	}
	if identifier == "" || len(identifier) > 256 || strings.ContainsAny(identifier, "/\x00") {
		return fmt.Errorf("%w: identifier must be 1..256 characters without '/'", ErrInvalid)
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: payload over %d bytes", ErrInvalid, MaxPayload)
	}
	var obj map[string]any
	if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
		return fmt.Errorf("%w: payload must be a JSON object", ErrInvalid)
	}
	if err := ValidatePayload(declType, payload); err != nil {
		return err
	}
	if declType == TypeSoftwareUpdateSpecific {
		return validateSoftwareUpdate(obj)
	}
	return nil
}

func validateSoftwareUpdate(p map[string]any) error {
	known := map[string]bool{"TargetOSVersion": true, "TargetBuildVersion": true, "TargetLocalDateTime": true, "DetailsURL": true}
	for k, v := range p {
		if !known[k] {
			return fmt.Errorf("%w: unknown key %.64q for %s", ErrInvalid, k, TypeSoftwareUpdateSpecific)
		}
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%w: %s must be a string", ErrInvalid, k)
		}
	}
	v, _ := p["TargetOSVersion"].(string)
	if _, err := osversion.Parse(v); err != nil {
		return fmt.Errorf("%w: Payload.TargetOSVersion: want a version like 26.1 or 26.1.2", ErrInvalid)
	}
	if b, ok := p["TargetBuildVersion"].(string); ok {
		if _, err := osversion.ParseBuild(b); err != nil {
			return fmt.Errorf("%w: Payload.TargetBuildVersion: want a build like 23B85 or 20A242a", ErrInvalid)
		}
	}
	d, _ := p["TargetLocalDateTime"].(string)
	if !localDateTime.MatchString(d) {
		return fmt.Errorf("%w: TargetLocalDateTime is required as yyyy-mm-ddThh:mm:ss (local, no zone)", ErrInvalid)
	}
	if _, err := time.Parse("2006-01-02T15:04:05", d); err != nil {
		return fmt.Errorf("%w: TargetLocalDateTime: not a date-time", ErrInvalid)
	}
	if u, ok := p["DetailsURL"].(string); ok {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" && pu.Scheme != "http" || pu.Host == "" {
			return fmt.Errorf("%w: DetailsURL must be an http(s) URL", ErrInvalid)
		}
	}
	return nil
}
