// Package deptest is an in-process fake of Apple's device assignment
// service (the ABM/ASM side of ADE) for tests: it checks OAuth and sessions,
// serves fetch and sync pages with cursors that expire, records profiles
// and assignments, injects Apple's failures, and builds real .p7m server
// tokens encrypted to a given certificate. It follows Apple's documented
// behaviour, not Orchard's client, and verifies OAuth signatures with its
// own code.
package deptest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// Token is the content of a server token.
type Token struct {
	ConsumerKey    string
	ConsumerSecret string
	AccessToken    string
	AccessSecret   string
	Expiry         time.Time
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewToken returns fresh random credentials valid for a year.
func NewToken() Token {
	return Token{
		ConsumerKey:    "CK_" + randHex(16),
		ConsumerSecret: "CS_" + randHex(16),
		AccessToken:    "AT_" + randHex(16),
		AccessSecret:   "AS_" + randHex(16),
		Expiry:         time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second),
	}
}

// P7M builds the S/MIME file ABM lets an admin download: the token JSON in
// a MESSAGE block, enveloped (PKCS#7) to cert, base64 under MIME headers.
func P7M(t testing.TB, cert *x509.Certificate, tok Token) []byte {
	t.Helper()
	js, err := json.Marshal(map[string]string{
		"consumer_key":        tok.ConsumerKey,
		"consumer_secret":     tok.ConsumerSecret,
		"access_token":        tok.AccessToken,
		"access_secret":       tok.AccessSecret,
		"access_token_expiry": tok.Expiry.UTC().Format("2006-01-02T15:04:05Z"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return P7MRaw(t, cert, "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"+
		"-----BEGIN MESSAGE-----\n"+string(js)+"\n-----END MESSAGE-----\n")
}

// P7MRaw envelopes any plaintext to cert as an S/MIME file.
func P7MRaw(t testing.TB, cert *x509.Certificate, plaintext string) []byte {
	t.Helper()
	der, err := pkcs7.Encrypt([]byte(plaintext), []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	return SMIME(der)
}

// SMIME wraps DER in S/MIME headers with a base64 body.
func SMIME(der []byte) []byte {
	var b strings.Builder
	b.WriteString("Content-Type: application/pkcs7-mime; name=\"smime.p7m\"; smime-type=enveloped-data\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"smime.p7m\"\r\n")
	b.WriteString("Content-Description: S/MIME Encrypted Message\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(der)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return []byte(b.String())
}

// Fault is an injected failure answered instead of the next call.
type Fault struct {
	Status     int
	Body       string // Apple's code, e.g. "EXPIRED_CURSOR", or JSON
	RetryAfter string // Retry-After header value
}

type event struct {
	serial string
	op     string
	date   time.Time
}

// Server is the fake service. Its methods are safe for concurrent use.
type Server struct {
	URL string
	srv *httptest.Server
	t   testing.TB

	mu           sync.Mutex
	now          func() time.Time
	tokens       map[string]Token // by consumer key
	rejected     bool
	denied       bool
	sessions     map[string]bool
	sessionCount int
	n            int
	removed      map[int]bool
	events       []event
	gen          int
	profiles     map[string]map[string]any
	assigned     map[string]string
	failSerials  map[string]bool
	faults       map[string][]Fault
	calls        map[string]int
	assignTries  map[string]int
	maxBatch     int

	gateMu  sync.Mutex
	gate    chan struct{}
	waiting int
}

// Block holds every request until the returned release is called, so a
// test can act while a call is in flight. Waiting tells how many wait.
func (s *Server) Block() (release func()) {
	ch := make(chan struct{})
	s.gateMu.Lock()
	s.gate = ch
	s.gateMu.Unlock()
	return func() {
		s.gateMu.Lock()
		if s.gate == ch {
			s.gate = nil
		}
		s.gateMu.Unlock()
		close(ch)
	}
}

// Waiting counts requests held by Block.
func (s *Server) Waiting() int { s.gateMu.Lock(); defer s.gateMu.Unlock(); return s.waiting }

// NewServer starts a fake that accepts tok and assigns n generated devices.
// It is closed when the test ends.
func NewServer(t testing.TB, tok Token, n int) *Server {
	s := &Server{t: t, now: time.Now, tokens: map[string]Token{tok.ConsumerKey: tok}, sessions: map[string]bool{},
		n: n, removed: map[int]bool{}, profiles: map[string]map[string]any{}, assigned: map[string]string{},
		failSerials: map[string]bool{}, faults: map[string][]Fault{}, calls: map[string]int{}, assignTries: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// AddToken makes the fake accept another token (a renewal).
func (s *Server) AddToken(tok Token) {
	s.mu.Lock()
	s.tokens[tok.ConsumerKey] = tok
	s.mu.Unlock()
}

// Serial is the serial number of generated device i.
func Serial(i int) string { return fmt.Sprintf("FAKE%08d", i) }

func index(serial string) (int, bool) {
	if !strings.HasPrefix(serial, "FAKE") || len(serial) != 12 {
		return 0, false
	}
	i, err := strconv.Atoi(serial[4:])
	return i, err == nil
}

// AddDevices assigns k more devices (sync reports them as added) and
// returns their serials.
func (s *Server) AddDevices(k int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for range k {
		serial := Serial(s.n)
		s.n++
		s.events = append(s.events, event{serial, "added", s.now()})
		out = append(out, serial)
	}
	return out
}

// ReleaseDevices removes devices from the server (op_type deleted).
func (s *Server) ReleaseDevices(serials ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, serial := range serials {
		if i, ok := index(serial); ok && i < s.n {
			s.removed[i] = true
			s.events = append(s.events, event{serial, "deleted", s.now()})
		}
	}
}

// ReplayLastEvent repeats the last sync event with the same op_date, as
// Apple may.
func (s *Server) ReplayLastEvent() {
	s.mu.Lock()
	if len(s.events) > 0 {
		s.events = append(s.events, s.events[len(s.events)-1])
	}
	s.mu.Unlock()
}

// Inject queues faults for a route such as "POST /devices/sync".
func (s *Server) Inject(route string, faults ...Fault) {
	s.mu.Lock()
	s.faults[route] = append(s.faults[route], faults...)
	s.mu.Unlock()
}

// ExpireCursors makes every cursor issued so far EXPIRED_CURSOR.
func (s *Server) ExpireCursors() { s.mu.Lock(); s.gen++; s.mu.Unlock() }

// ExpireSessions drops every auth session (next calls get 401).
func (s *Server) ExpireSessions() { s.mu.Lock(); clear(s.sessions); s.mu.Unlock() }

// RejectToken makes /session refuse the OAuth token (expired or revoked).
func (s *Server) RejectToken(v bool) { s.mu.Lock(); s.rejected = v; clear(s.sessions); s.mu.Unlock() }

// DenyAccess makes every call answer 403 ACCESS_DENIED.
func (s *Server) DenyAccess(v bool) { s.mu.Lock(); s.denied = v; s.mu.Unlock() }

// FailSerials makes assignments of these serials answer FAILED.
func (s *Server) FailSerials(serials ...string) {
	s.mu.Lock()
	for _, x := range serials {
		s.failSerials[x] = true
	}
	s.mu.Unlock()
}

// Calls counts requests to a route such as "PUT /profile/devices".
func (s *Server) Calls(route string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[route] }

// Sessions counts sessions issued.
func (s *Server) Sessions() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sessionCount }

// MaxBatch is the largest assignment batch received.
func (s *Server) MaxBatch() int { s.mu.Lock(); defer s.mu.Unlock(); return s.maxBatch }

// AssignTries counts assignment attempts of a serial.
func (s *Server) AssignTries(serial string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assignTries[serial]
}

// AssignedProfile is the profile UUID assigned to serial ("" if none).
func (s *Server) AssignedProfile(serial string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assigned[serial]
}

// Profile returns a defined profile's JSON object, or nil.
func (s *Server) Profile(uuid string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profiles[uuid]
}

// Profiles counts the profiles defined.
func (s *Server) Profiles() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.profiles) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	s.gateMu.Lock()
	gate := s.gate
	if gate != nil {
		s.waiting++
	}
	s.gateMu.Unlock()
	if gate != nil {
		<-gate
		s.gateMu.Lock()
		s.waiting--
		s.gateMu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[route]++
	if r.Header.Get("X-Server-Protocol-Version") == "" {
		s.t.Errorf("deptest: %s without X-Server-Protocol-Version", route)
	}
	if route == "GET /session" {
		s.session(w, r)
		return
	}
	if !s.sessions[r.Header.Get("X-ADM-Auth-Session")] {
		http.Error(w, "UNAUTHORIZED", http.StatusUnauthorized)
		return
	}
	if s.denied {
		http.Error(w, "ACCESS_DENIED", http.StatusForbidden)
		return
	}
	if q := s.faults[route]; len(q) > 0 {
		f := q[0]
		s.faults[route] = q[1:]
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		http.Error(w, f.Body, f.Status)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "BAD_REQUEST", http.StatusBadRequest)
		return
	}
	switch route {
	case "GET /account":
		writeJSON(w, map[string]any{"server_name": "Orchard Fake Server", "server_uuid": "FAKE-SERVER-UUID",
			"admin_id": "admin@example.com", "org_name": "Example Org", "org_email": "it@example.com",
			"org_phone": "+1 555 0100", "org_address": "1 Infinite Loop"})
	case "POST /server/devices":
		s.fetch(w, body)
	case "POST /devices/sync":
		s.sync(w, body)
	case "POST /devices":
		var req struct{ Devices []string }
		json.Unmarshal(body, &req)
		out := map[string]any{}
		for _, serial := range req.Devices {
			if i, ok := index(serial); ok && i < s.n && !s.removed[i] {
				d := s.device(i)
				d["response_status"] = "SUCCESS"
				out[serial] = d
			} else {
				out[serial] = map[string]any{"response_status": "NOT_ACCESSIBLE"}
			}
		}
		writeJSON(w, map[string]any{"devices": out})
	case "POST /profile":
		s.defineProfile(w, body)
	case "GET /profile":
		p, ok := s.profiles[r.URL.Query().Get("profile_uuid")]
		if !ok {
			http.Error(w, "NOT_FOUND", http.StatusNotFound)
			return
		}
		writeJSON(w, p)
	case "PUT /profile/devices", "DELETE /profile/devices", "POST /devices/disown":
		s.serials(w, route, body)
	default:
		http.Error(w, "NOT_FOUND", http.StatusNotFound)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF8")
	json.NewEncoder(w).Encode(v)
}

// enc is RFC 5849 percent-encoding, written independently of Orchard's.
func enc(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), "%7E", "~")
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "OAuth ") {
		http.Error(w, "oauth_problem=parameter_absent", http.StatusUnauthorized)
		return
	}
	params := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(h, "OAuth "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		uv, err := url.PathUnescape(strings.Trim(v, `"`))
		if err != nil {
			http.Error(w, "oauth_problem=parameter_rejected", http.StatusBadRequest)
			return
		}
		params[k] = uv
	}
	tok, ok := s.tokens[params["oauth_consumer_key"]]
	if !ok {
		http.Error(w, "oauth_problem=consumer_key_unknown", http.StatusUnauthorized)
		return
	}
	if s.rejected || params["oauth_token"] != tok.AccessToken {
		http.Error(w, "oauth_problem=token_rejected", http.StatusUnauthorized)
		return
	}
	if params["oauth_signature_method"] != "HMAC-SHA1" || params["oauth_version"] != "1.0" || params["oauth_nonce"] == "" {
		http.Error(w, "oauth_problem=parameter_rejected", http.StatusBadRequest)
		return
	}
	var keys []string
	for k := range params {
		if k != "realm" && k != "oauth_signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, enc(k)+"="+enc(params[k]))
	}
	base := "GET&" + enc(s.URL+"/session") + "&" + enc(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(enc(tok.ConsumerSecret)+"&"+enc(tok.AccessSecret)))
	mac.Write([]byte(base))
	if !hmac.Equal([]byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))), []byte(params["oauth_signature"])) {
		http.Error(w, "oauth_problem=signature_invalid", http.StatusUnauthorized)
		return
	}
	id := randHex(16)
	s.sessions[id] = true
	s.sessionCount++
	writeJSON(w, map[string]string{"auth_session_token": id})
}

var models = [...]struct{ model, desc, os, family, color string }{
	{"iPad (10th generation)", "IPAD WI-FI 64GB SILVER", "iPadOS", "iPad", "SILVER"},
	{"iPhone 15", "IPHONE 15 128GB BLACK", "iOS", "iPhone", "BLACK"},
	{"MacBook Air", "MBA 13.6 M3 8C CPU 8GB 256GB", "OSX", "Mac", "MIDNIGHT"},
}

func (s *Server) device(i int) map[string]any {
	m := models[i%len(models)]
	serial := Serial(i)
	d := map[string]any{"serial_number": serial, "model": m.model, "description": m.desc, "os": m.os,
		"device_family": m.family, "color": m.color, "asset_tag": "AT" + strconv.Itoa(i),
		"device_assigned_by": "admin@example.com", "device_assigned_date": "2026-01-02T03:04:05Z",
		"profile_status": "empty"}
	if uuid := s.assigned[serial]; uuid != "" {
		d["profile_uuid"], d["profile_status"] = uuid, "assigned"
		d["profile_assign_time"] = "2026-01-03T00:00:00Z"
	}
	return d
}

type cursorReq struct {
	Cursor string `json:"cursor"`
	Limit  int    `json:"limit"`
}

func limitOf(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// parseCursor reads "F.gen.offset.event" (fetch) or "S.gen.event" (sync).
func (s *Server) parseCursor(w http.ResponseWriter, c string) (kind string, offset, ev int, ok bool) {
	parts := strings.Split(c, ".")
	nums := make([]int, len(parts))
	for i := 1; i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			http.Error(w, "INVALID_CURSOR", http.StatusBadRequest)
			return "", 0, 0, false
		}
		nums[i] = n
	}
	switch {
	case parts[0] == "F" && len(parts) == 4:
		kind, offset, ev = "F", nums[2], nums[3]
	case parts[0] == "S" && len(parts) == 3:
		kind, ev = "S", nums[2]
	default:
		http.Error(w, "INVALID_CURSOR", http.StatusBadRequest)
		return "", 0, 0, false
	}
	if nums[1] != s.gen {
		http.Error(w, "EXPIRED_CURSOR", http.StatusBadRequest)
		return "", 0, 0, false
	}
	if ev > len(s.events) || offset > s.n {
		http.Error(w, "INVALID_CURSOR", http.StatusBadRequest)
		return "", 0, 0, false
	}
	return kind, offset, ev, true
}

func (s *Server) fetch(w http.ResponseWriter, body []byte) {
	var req cursorReq
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "MALFORMED_REQUEST_BODY", http.StatusBadRequest)
		return
	}
	offset, ev := 0, len(s.events)
	if req.Cursor != "" {
		kind, o, e, ok := s.parseCursor(w, req.Cursor)
		if !ok {
			return
		}
		if kind != "F" {
			http.Error(w, "INVALID_CURSOR", http.StatusBadRequest)
			return
		}
		offset, ev = o, e
	}
	limit := limitOf(req.Limit)
	devices := make([]map[string]any, 0, limit)
	i := offset
	for ; i < s.n && len(devices) < limit; i++ {
		if !s.removed[i] {
			devices = append(devices, s.device(i))
		}
	}
	writeJSON(w, map[string]any{"devices": devices, "cursor": fmt.Sprintf("F.%d.%d.%d", s.gen, i, ev),
		"more_to_follow": i < s.n, "fetched_until": s.now().UTC().Format(time.RFC3339)})
}

func (s *Server) sync(w http.ResponseWriter, body []byte) {
	var req cursorReq
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "MALFORMED_REQUEST_BODY", http.StatusBadRequest)
		return
	}
	if req.Cursor == "" {
		http.Error(w, "CURSOR_REQUIRED", http.StatusBadRequest)
		return
	}
	_, _, ev, ok := s.parseCursor(w, req.Cursor)
	if !ok {
		return
	}
	end := min(len(s.events), ev+limitOf(req.Limit))
	devices := make([]map[string]any, 0, end-ev)
	for _, e := range s.events[ev:end] {
		d := map[string]any{"serial_number": e.serial}
		if i, ok := index(e.serial); ok && e.op != "deleted" {
			d = s.device(i)
		}
		d["op_type"], d["op_date"] = e.op, e.date.UTC().Format(time.RFC3339Nano)
		devices = append(devices, d)
	}
	writeJSON(w, map[string]any{"devices": devices, "cursor": fmt.Sprintf("S.%d.%d", s.gen, end),
		"more_to_follow": end < len(s.events), "fetched_until": s.now().UTC().Format(time.RFC3339)})
}

func (s *Server) defineProfile(w http.ResponseWriter, body []byte) {
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "MALFORMED_REQUEST_BODY", http.StatusBadRequest)
		return
	}
	if name, _ := p["profile_name"].(string); name == "" {
		http.Error(w, "CONFIG_NAME_REQUIRED", http.StatusBadRequest)
		return
	}
	if u, _ := p["url"].(string); u == "" {
		http.Error(w, "CONFIG_URL_REQUIRED", http.StatusBadRequest)
		return
	}
	uuid := strings.ToUpper(randHex(16))
	p["profile_uuid"] = uuid
	s.profiles[uuid] = p
	writeJSON(w, map[string]any{"profile_uuid": uuid, "devices": map[string]string{}})
}

func (s *Server) serials(w http.ResponseWriter, route string, body []byte) {
	var req struct {
		ProfileUUID string   `json:"profile_uuid"`
		Devices     []string `json:"devices"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Devices) == 0 {
		http.Error(w, "DEVICE_ID_REQUIRED", http.StatusBadRequest)
		return
	}
	s.maxBatch = max(s.maxBatch, len(req.Devices))
	if len(req.Devices) > 1000 {
		s.t.Errorf("deptest: %s with %d serials (at most 1000)", route, len(req.Devices))
		http.Error(w, "TOO_MANY_DEVICES", http.StatusBadRequest)
		return
	}
	if route == "PUT /profile/devices" && s.profiles[req.ProfileUUID] == nil {
		http.Error(w, "PROFILE_NOT_FOUND", http.StatusBadRequest)
		return
	}
	out := map[string]string{}
	for _, serial := range req.Devices {
		i, ok := index(serial)
		switch {
		case !ok || i >= s.n || s.removed[i]:
			out[serial] = "NOT_ACCESSIBLE"
		case route == "PUT /profile/devices":
			s.assignTries[serial]++
			if s.failSerials[serial] {
				out[serial] = "FAILED"
				continue
			}
			s.assigned[serial] = req.ProfileUUID
			out[serial] = "SUCCESS"
		case route == "DELETE /profile/devices":
			delete(s.assigned, serial)
			out[serial] = "SUCCESS"
		default: // disown
			s.removed[i] = true
			s.events = append(s.events, event{serial, "deleted", s.now()})
			out[serial] = "SUCCESS"
		}
	}
	resp := map[string]any{"devices": out}
	if req.ProfileUUID != "" {
		resp["profile_uuid"] = req.ProfileUUID
	}
	writeJSON(w, resp)
}
