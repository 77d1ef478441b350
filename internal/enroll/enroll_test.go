package enroll_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminapi/apitest"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/portal"
	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/scep/scepclient"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

var (
	fixtureOnce sync.Once
	fixtureDir  string
	deviceKey   *rsa.PrivateKey
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

const testAPIKey = "enroll-test-key"

type env struct {
	ts    *httptest.Server
	store *bolt.Store
	ca    *pki.CA
	clock *deptest.Clock
	topic *atomic.Pointer[string] // the push topic; "" as before an upload
}

func newEnv(t *testing.T, opts ...enroll.Option) *env {
	t.Helper()
	fixtureOnce.Do(func() {
		// One CA and device key for the package: RSA generation is slow.
		var err error
		if fixtureDir, err = os.MkdirTemp("", "orchard-enroll-fixture"); err != nil {
			panic(err)
		}
		if _, err = pki.LoadOrCreateCA(fixtureDir); err != nil {
			panic(err)
		}
		if _, err = enrollprofile.LoadOrCreateSigner(fixtureDir, mustCA()); err != nil {
			panic(err)
		}
		if deviceKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	ca := mustCA()
	signer, err := enrollprofile.LoadOrCreateSigner(fixtureDir, ca)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := deptest.NewClock(time.Now())
	scepSrv, err := scep.New(ca, st, scep.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	topic := new(atomic.Pointer[string])
	initial := "com.apple.mgmt.External.test"
	topic.Store(&initial)
	h, err := enroll.New(enroll.Config{PublicURL: ts.URL, TLSCert: ts.Certificate(), TLSSelfSigned: true,
		Topic: func() string { return *topic.Load() }}, st, signer, scepSrv, append([]enroll.Option{enroll.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := adminapi.New(adminapi.Config{APIKey: testAPIKey, Store: st, Enroll: h})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/v1/", admin)
	h.RegisterPublic(mux)
	// Invitation links are pages: internal/portal serves them.
	dir, err := directory.New(st)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := directory.NewPasswordAuth(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	site, err := webui.New(webui.Options{Kind: "portal", Prefix: "/portal", Store: st, AllowFraming: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := portal.New(portal.Config{Enroll: h, Auth: auth, Site: site})
	if err != nil {
		t.Fatal(err)
	}
	pages.Register(mux)
	return &env{ts: ts, store: st, ca: ca, clock: clk, topic: topic}
}

func mustCA() *pki.CA {
	ca, err := pki.LoadOrCreateCA(fixtureDir)
	if err != nil {
		panic(err)
	}
	return ca
}

func (e *env) do(t *testing.T, method, path, ctype, body string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if strings.HasPrefix(path, "/v1/") {
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(path, "/v1/") {
		apitest.Conforms(t, method, e.ts.URL+path, ctype, []byte(body), resp, data)
	}
	return resp.StatusCode, data, resp.Header
}

// postInvitation presses the landing page's button as a browser does: it
// GETs the page (for its CSRF cookie and token), then POSTs the form.
func (e *env) postInvitation(t *testing.T, path string) (int, []byte, http.Header) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: e.ts.Client().Transport, Jar: jar}
	resp, err := c.Get(e.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := ""
	if m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page); m != nil {
		tok = string(m[1])
	}
	req, _ := http.NewRequest("POST", e.ts.URL+path, strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// enrollWithProfile is an independent device: it reads the signed profile
// with plain plist decoding and does SCEP with only what it finds there.
func (e *env) enrollWithProfile(t *testing.T, profile []byte) (*x509.Certificate, error) {
	t.Helper()
	content, _, err := enrollprofile.Parse(profile, e.ca.Pool())
	if err != nil {
		t.Fatalf("profile does not verify: %v", err)
	}
	var top map[string]any
	if err := plist.Unmarshal(content, &top); err != nil {
		t.Fatal(err)
	}
	var scepURL, challenge string
	for _, p := range top["PayloadContent"].([]any) {
		d := p.(map[string]any)
		if d["PayloadType"] == "com.apple.security.scep" {
			c := d["PayloadContent"].(map[string]any)
			scepURL, challenge = c["URL"].(string), c["Challenge"].(string)
		}
	}
	if scepURL == "" || challenge == "" {
		t.Fatalf("no SCEP URL/challenge in profile")
	}
	c, err := scepclient.New(scepURL, e.ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c.Enroll(context.Background(), deviceKey, pkix.Name{CommonName: "dev"}, challenge)
}

func wantSCEPFail(t *testing.T, err error) {
	t.Helper()
	var fe *scepclient.FailError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want SCEP failure", err)
	}
}

// An invitation link's GET and HEAD show a landing page and spend
// nothing; its POST (the page's button) hands out the profile once; a used
// link answers a page, not JSON.
func TestInvitationLandingThenOnePost(t *testing.T) {
	e := newEnv(t)
	code, body, _ := e.do(t, "POST", "/v1/enrollment/invitations", "application/json", `{"label":"Alice's iPad"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	inv := decode[struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}](t, body)
	path := strings.TrimPrefix(inv.URL, e.ts.URL)
	for _, method := range []string{"GET", "HEAD", "GET"} {
		code, body, hdr := e.do(t, method, path, "", "")
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || hdr.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s of the link: %d %s, want the landing page", method, code, hdr.Get("Content-Type"))
		}
		if method == "GET" && (!strings.Contains(string(body), "Alice&#39;s iPad") || !strings.Contains(string(body), `action="`+path+`"`)) {
			t.Errorf("landing page lacks the label or the button's form: %s", body)
		}
	}
	code, profile, hdr := e.postInvitation(t, path)
	if code != 200 || hdr.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("POST after three GET/HEAD: %d %s, want the profile", code, hdr.Get("Content-Type"))
	}
	for _, method := range []string{"GET", "HEAD"} {
		code, body, hdr := e.do(t, method, path, "", "")
		if code != 410 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || method == "GET" && !strings.Contains(string(body), "already used") {
			t.Errorf("%s of the used link: %d %s %s, want the 410 page", method, code, hdr.Get("Content-Type"), body)
		}
	}
	if code, body, _ := e.do(t, "GET", "/enroll/not-a-token", "", ""); code != 404 || !strings.Contains(string(body), "not known") {
		t.Errorf("unknown token: %d %s, want the 404 page", code, body)
	}
	cert, err := e.enrollWithProfile(t, profile)
	if err != nil {
		t.Fatalf("SCEP with the profile's challenge: %v", err)
	}
	rec, err := e.store.Cert(context.Background(), pki.Fingerprint(cert))
	if err != nil || rec.Authorization.Kind != storage.KindInvitation || rec.Authorization.Ref != inv.ID {
		t.Errorf("record %+v, %v; want invitation %s", rec, err, inv.ID)
	}
	if _, err := e.enrollWithProfile(t, profile); err == nil {
		t.Error("the invitation's challenge worked twice")
	}
}

// Without a push topic no profile goes out (it would be rejected by the
// device), and an invitation link is not spent: it works once a push
// certificate is there.
func TestNoTopicNoProfile(t *testing.T) {
	e := newEnv(t)
	code, body, _ := e.do(t, "POST", "/v1/enrollment/invitations", "application/json", `{}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	inv := decode[struct {
		URL string `json:"url"`
	}](t, body)
	none := ""
	e.topic.Store(&none)
	path := strings.TrimPrefix(inv.URL, e.ts.URL)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/enrollment/profile", ""},
		{"POST", "/v1/enrollment/invitations", "{}"},
		{"POST", "/v1/configurator/profiles", `{"name":"Lab"}`},
		{"POST", "/enroll/configurator/x", "not MachineInfo"},
	} {
		ctype := ""
		if c.body != "" {
			ctype = "application/json"
		}
		if code, body, _ := e.do(t, c.method, c.path, ctype, c.body); code != 409 || !strings.Contains(string(body), "upload an MDM push certificate first") {
			t.Errorf("%s %s without a topic: %d %s, want 409 with the next step", c.method, c.path, code, body)
		}
	}
	if code, body, _ := e.postInvitation(t, path); code != 409 || !strings.Contains(string(body), "upload an MDM push certificate first") {
		t.Errorf("invitation without a topic: %d %s, want 409 with the next step", code, body)
	}
	some := "com.apple.mgmt.External.test"
	e.topic.Store(&some)
	if code, _, hdr := e.postInvitation(t, path); code != 200 || hdr.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("the invitation after the upload: %d, want 200 (not spent)", code)
	}
}

func TestInvitationChallengeExpires(t *testing.T) {
	e := newEnv(t)
	_, body, _ := e.do(t, "POST", "/v1/enrollment/invitations", "", `{"expires_in":"1h"}`)
	url := decode[struct{ URL string }](t, body).URL
	_, profile, _ := e.postInvitation(t, strings.TrimPrefix(url, e.ts.URL))
	e.clock.Advance(enroll.OTAChallengeTTL)
	_, err := e.enrollWithProfile(t, profile)
	wantSCEPFail(t, err)
}

func TestAdminProfileSingleUse(t *testing.T) {
	e := newEnv(t)
	code, profile, _ := e.do(t, "GET", "/v1/enrollment/profile", "", "")
	if code != 200 {
		t.Fatalf("profile: %d", code)
	}
	if _, err := e.enrollWithProfile(t, profile); err != nil {
		t.Fatal(err)
	}
	_, err := e.enrollWithProfile(t, profile)
	wantSCEPFail(t, err)
}

func (e *env) createConfigurator(t *testing.T, affinity bool) string {
	t.Helper()
	code, body, _ := e.do(t, "POST", "/v1/configurator/profiles", "application/json",
		fmt.Sprintf(`{"name":"Lab iPads","description":"shared","user_affinity":%v}`, affinity))
	if code != 201 {
		t.Fatalf("create configurator profile: %d %s", code, body)
	}
	return decode[struct{ ID string }](t, body).ID
}

func TestConfiguratorDirectEnrollmentDownloads(t *testing.T) {
	e := newEnv(t)
	withUser := e.createConfigurator(t, true)
	code, body, _ := e.do(t, "GET", "/v1/configurator/profiles/"+withUser+"/mobileconfig", "", "")
	if code != 409 || !strings.Contains(string(body), "without user affinity") {
		t.Errorf("direct enrollment with user affinity: %d %s", code, body)
	}
	id := e.createConfigurator(t, false)
	_, first, _ := e.do(t, "GET", "/v1/configurator/profiles/"+id+"/mobileconfig", "", "")
	e.clock.Advance(7 * 24 * time.Hour)
	_, second, _ := e.do(t, "GET", "/v1/configurator/profiles/"+id+"/mobileconfig", "", "")
	// Multi-use: the first download enrolls two devices.
	for range 2 {
		if _, err := e.enrollWithProfile(t, first); err != nil {
			t.Fatalf("first download: %v", err)
		}
	}
	// Day 14 after the first download: it expired, the second did not.
	e.clock.Advance(7 * 24 * time.Hour)
	_, err := e.enrollWithProfile(t, first)
	wantSCEPFail(t, err)
	if _, err := e.enrollWithProfile(t, second); err != nil {
		t.Fatalf("second download was shortened by the first's expiry: %v", err)
	}
	_, body, _ = e.do(t, "GET", "/v1/configurator/profiles/"+id+"/downloads", "", "")
	dl := decode[struct {
		Downloads []struct {
			ID      string
			Uses    int
			Expired bool
		}
	}](t, body).Downloads
	if len(dl) != 2 || dl[0].Uses != 2 || !dl[0].Expired || dl[1].Uses != 1 || dl[1].Expired {
		t.Fatalf("downloads = %+v", dl)
	}
	if code, _, _ := e.do(t, "DELETE", "/v1/configurator/profiles/"+withUser+"/downloads/"+dl[1].ID, "", ""); code != 404 {
		t.Errorf("revoke through another profile: %d, want 404", code)
	}
	if code, _, _ := e.do(t, "DELETE", "/v1/configurator/profiles/"+id+"/downloads/"+dl[1].ID, "", ""); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	_, err = e.enrollWithProfile(t, second)
	wantSCEPFail(t, err)
	// The show view exports the Setup Assistant URL.
	_, body, _ = e.do(t, "GET", "/v1/configurator/profiles/"+id, "", "")
	v := decode[map[string]any](t, body)
	if v["setup_assistant_url"] != e.ts.URL+"/enroll/configurator/"+id {
		t.Errorf("setup_assistant_url = %v", v["setup_assistant_url"])
	}
}

func TestSerialCSV(t *testing.T) {
	e := newEnv(t)
	p1, p2 := e.createConfigurator(t, false), e.createConfigurator(t, true)
	imp := func(q, csv string) (int, []byte) {
		code, body, _ := e.do(t, "POST", "/v1/configurator/serials?"+q, "text/csv", csv)
		return code, body
	}
	good := "F7TLWCLBX196,device details  \nDLXQPCWVGHMJ,device details\n"
	tests := []struct {
		name, csv string
		want      []string
	}{
		{"bad rows", "AAA111,ok\nBAD SERIAL,x\nCCC333\nDDD444," + strings.Repeat("x", 129) + "\nAAA111,dup\n",
			[]string{"line 2: serial", "line 3: want 2 columns", "line 4: details longer than 128", "line 5: serial AAA111 repeats line 1"}},
		{"too many rows", strings.Repeat("X1,d\n", 1) + rowsCSV(5001), []string{"more than 5000 rows"}},
		{"empty", "", []string{"no rows"}},
		{"bad quoting", "A1,\"x\n", []string{"line 1"}},
		// A bare quote once made the parser panic (FieldPos after a failed read).
		{"bare quote", "C02\"ABC,x\n", []string{"line 1"}},
	}
	for _, tc := range tests {
		code, body := imp("profile_id="+p1, tc.csv)
		if code != 400 {
			t.Errorf("%s: status %d", tc.name, code)
			continue
		}
		got := decode[struct {
			Error    string
			Problems []string
		}](t, body)
		all := strings.Join(got.Problems, "\n")
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: problems %q lack %q", tc.name, got.Problems, w)
			}
		}
		if strings.Contains(got.Error, "\n") {
			t.Errorf("%s: error is not one line", tc.name)
		}
	}
	if list, _ := e.store.ListSerials(context.Background(), "", "", 0); len(list) != 0 {
		t.Fatalf("refused files imported %d serials", len(list))
	}
	if code, body := imp("profile_id="+p1, rowsCSV(5000)); code != 200 || decode[storage.ImportResult](t, body).Added != 5000 {
		t.Fatalf("5000 rows: %d %s", code, body)
	}
	if code, _ := imp("profile_id=nope", good); code != 404 {
		t.Errorf("unknown profile: %d", code)
	}
	if code, _ := imp("profile_id="+p1, good); code != 200 {
		t.Fatal(code)
	}
	if code, body := imp("profile_id="+p2, "F7TLWCLBX196,new details\n"); code != 200 || decode[storage.ImportResult](t, body).Updated != 1 {
		t.Fatalf("re-import: %d %s", code, body)
	}
	a, _ := e.store.Serial(context.Background(), "F7TLWCLBX196")
	if a.Details != "device details" || a.ProfileID != p2 {
		t.Errorf("without overwrite: %+v", a)
	}
	imp("profile_id="+p2+"&overwrite=true", "F7TLWCLBX196,new details\n")
	if a, _ := e.store.Serial(context.Background(), "F7TLWCLBX196"); a.Details != "new details" {
		t.Errorf("with overwrite: %+v", a)
	}
	code, body, _ := e.do(t, "POST", "/v1/configurator/serials/assign", "application/json", `{"serials":["DLXQPCWVGHMJ","NOPE"],"profile_id":"`+p2+`"}`)
	if code != 404 {
		t.Errorf("assign with unknown serial: %d %s", code, body)
	}
	if code, _, _ := e.do(t, "POST", "/v1/configurator/serials/assign", "application/json", `{"serials":["dlxqpcwvghmj"],"profile_id":"`+p2+`"}`); code != 200 {
		t.Errorf("assign: %d", code)
	}
	_, body, _ = e.do(t, "GET", "/v1/configurator/serials?profile_id="+p2, "", "")
	if got := decode[struct{ Serials []storage.SerialAssignment }](t, body).Serials; len(got) != 2 {
		t.Errorf("serials of p2 = %+v", got)
	}
	if code, _, _ := e.do(t, "DELETE", "/v1/configurator/profiles/"+p2, "", ""); code != 409 {
		t.Errorf("delete profile with serials: %d, want 409", code)
	}
}

func rowsCSV(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "SN%06d,row %d\n", i, i)
	}
	return b.String()
}

// testApple is the package's stand-in for Apple's device CA.
var testApple = sync.OnceValue(func() *simdevice.AppleChain {
	c, err := simdevice.NewAppleChain()
	if err != nil {
		panic(err)
	}
	return c
})

// signedMachineInfo is a MachineInfo signed through chain (root ->
// intermediate -> leaf, the intermediate inside the CMS), or by a
// self-signed certificate when chain is nil.
func signedMachineInfo(t *testing.T, chain *simdevice.AppleChain, udid, serial string) string {
	t.Helper()
	d := &simdevice.Device{UDID: udid, SerialNumber: serial, ProductName: "iPad13,1", BuildVersion: "22A3354",
		OSVersion: "18.0", Apple: chain}
	raw, err := d.MachineInfo()
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

type failureList struct {
	Failures []storage.EnrollmentFailure `json:"failures"`
}

func (e *env) failures(t *testing.T) []storage.EnrollmentFailure {
	t.Helper()
	code, body, _ := e.do(t, "GET", "/v1/enrollment/failures?limit=100", "", "")
	if code != 200 {
		t.Fatalf("failures: %d %s", code, body)
	}
	return decode[failureList](t, body).Failures
}

// Issue #19 section 3: MachineInfo must chain to the trusted root through
// the intermediates it carries; anything else is 403 and recorded.
func TestSetupAssistantProfile(t *testing.T) {
	apple := testApple()
	other, err := simdevice.NewAppleChain() // a forger's look-alike chain
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, enroll.WithMachineInfoRoots(apple.Roots()))
	p1, p2 := e.createConfigurator(t, true), e.createConfigurator(t, false)
	e.do(t, "POST", "/v1/configurator/serials?profile_id="+p1, "text/csv", "F7TLWCLBX196,lab\n")
	tests := []struct {
		name, profile, body string
		status              int
		reason              string // recorded failure, "" for none
	}{
		{"assigned", p1, signedMachineInfo(t, apple, "UDID-1", "F7TLWCLBX196"), 200, ""},
		{"other profile", p2, signedMachineInfo(t, apple, "UDID-1", "F7TLWCLBX196"), 403, "not assigned to this profile"},
		{"unknown serial", p1, signedMachineInfo(t, apple, "UDID-2", "ZZZ"), 403, "not assigned to this profile"},
		{"self-signed", p1, signedMachineInfo(t, nil, "UDID-1", "F7TLWCLBX196"), 403, "not verified against Apple's root"},
		{"look-alike chain", p1, signedMachineInfo(t, other, "UDID-1", "F7TLWCLBX196"), 403, "not verified against Apple's root"},
		{"unsigned", p1, "<plist/>", 400, ""},
	}
	for _, tc := range tests {
		before, chBefore := len(e.failures(t)), len(e.challenges(t, tc.profile))
		code, body, _ := e.do(t, "POST", "/enroll/configurator/"+tc.profile, "application/pkcs7-signature", tc.body)
		if code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.status)
			continue
		}
		fs := e.failures(t)
		switch {
		case tc.reason == "" && len(fs) != before:
			t.Errorf("%s: recorded %+v", tc.name, fs[before:])
		case tc.reason != "" && (len(fs) != before+1 || !strings.Contains(fs[before].Reason, tc.reason) ||
			fs[before].Method != storage.KindConfigurator || fs[before].Serial == "" || fs[before].At.IsZero()):
			t.Errorf("%s: recorded %+v, want one failure saying %q", tc.name, fs[before:], tc.reason)
		}
		if code != 200 {
			if n := len(e.challenges(t, tc.profile)); n != chBefore {
				t.Errorf("%s: refused request stored %d challenges", tc.name, n-chBefore)
			}
			continue
		}
		cert, err := e.enrollWithProfile(t, body)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := e.store.Cert(context.Background(), pki.Fingerprint(cert))
		want := storage.CertAuthorization{Kind: storage.KindConfigurator, ChallengeID: rec.Authorization.ChallengeID,
			Ref: p1, ForUDID: "UDID-1", ForSerial: "F7TLWCLBX196", AppleVerified: true}
		if rec.Authorization != want || cert.Subject.SerialNumber != "F7TLWCLBX196" {
			t.Errorf("authorization %+v subject %v", rec.Authorization, cert.Subject)
		}
	}
}

func (e *env) challenges(t *testing.T, ref string) []storage.Challenge {
	t.Helper()
	chs, err := e.store.ChallengesFor(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return chs
}

// Without an injected root the embedded one is Apple's published root, so
// the test chain is refused: the check is never off by default.
func TestMachineInfoTrustsApplesRoot(t *testing.T) {
	sum := sha256.Sum256(enroll.AppleRootDER())
	if got := hex.EncodeToString(sum[:]); got != "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024" {
		t.Fatalf("embedded Apple root SHA-256 = %s, not Apple's published fingerprint", got)
	}
	e := newEnv(t)
	p := e.createConfigurator(t, false)
	e.do(t, "POST", "/v1/configurator/serials?profile_id="+p, "text/csv", "F7TLWCLBX196,lab\n")
	if code, body, _ := e.do(t, "POST", "/enroll/configurator/"+p, "application/pkcs7-signature",
		signedMachineInfo(t, testApple(), "UDID-1", "F7TLWCLBX196")); code != 403 {
		t.Fatalf("test chain against Apple's root: %d %s, want 403", code, body)
	}
}

// The lab flag admits unverified MachineInfo, but never marks it
// Apple-verified, so it cannot take over an enrollment.
func TestInsecureMachineInfo(t *testing.T) {
	e := newEnv(t, enroll.WithMachineInfoRoots(testApple().Roots()), enroll.WithInsecureMachineInfo())
	p := e.createConfigurator(t, false)
	e.do(t, "POST", "/v1/configurator/serials?profile_id="+p, "text/csv", "F7TLWCLBX196,lab\n")
	for _, tc := range []struct {
		name     string
		chain    *simdevice.AppleChain
		verified bool
	}{{"self-signed", nil, false}, {"verified", testApple(), true}} {
		code, body, _ := e.do(t, "POST", "/enroll/configurator/"+p, "application/pkcs7-signature",
			signedMachineInfo(t, tc.chain, "UDID-1", "F7TLWCLBX196"))
		if code != 200 {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
		cert, err := e.enrollWithProfile(t, body)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := e.store.Cert(context.Background(), pki.Fingerprint(cert))
		if rec.Authorization.AppleVerified != tc.verified {
			t.Errorf("%s: AppleVerified = %v, want %v", tc.name, rec.Authorization.AppleVerified, tc.verified)
		}
	}
	if fs := e.failures(t); len(fs) != 0 {
		t.Errorf("lab mode recorded %+v", fs)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/enrollment/invitations", `{"label":`, 400},
		{"POST", "/v1/enrollment/invitations", `{"expires_in":"9999h"}`, 400},
		{"POST", "/v1/enrollment/invitations", `{"nope":1}`, 400},
		{"POST", "/v1/configurator/profiles", `{"name":""}`, 400},
		{"POST", "/v1/configurator/profiles", strings.Repeat(" ", 70<<10) + "{}", 413},
		{"GET", "/v1/configurator/profiles/nope", "", 404},
		{"GET", "/v1/configurator/profiles/nope/mobileconfig", "", 404},
		{"POST", "/v1/configurator/serials", "A,b", 400},
		{"POST", "/v1/certificates/zz/revoke", "", 400},
		{"POST", "/v1/certificates/abcd/revoke", "", 404},
	}
	for _, tc := range tests {
		code, body, _ := e.do(t, tc.method, tc.path, "application/json", tc.body)
		var got struct{ Error string }
		if code != tc.status || json.Unmarshal(body, &got) != nil || got.Error == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", tc.method, tc.path, code, body, tc.status)
		}
	}
	ctx := context.Background()
	invs, _ := e.store.ListInvitations(ctx, "", 0)
	profs, _ := e.store.ListConfiguratorProfiles(ctx)
	if len(invs)+len(profs) != 0 {
		t.Errorf("bad input wrote %d invitations, %d profiles", len(invs), len(profs))
	}
}

func TestRevokeCertificate(t *testing.T) {
	e := newEnv(t)
	_, profile, _ := e.do(t, "GET", "/v1/enrollment/profile", "", "")
	cert, err := e.enrollWithProfile(t, profile)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.do(t, "POST", "/v1/certificates/"+scep.SerialString(cert)+"/revoke", "", ""); code != 204 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	rec, _ := e.store.Cert(context.Background(), pki.Fingerprint(cert))
	if !rec.Revoked {
		t.Error("certificate not revoked")
	}
	c, _ := scepclient.New(e.ts.URL+"/scep", e.ts.Client())
	_, err = c.Renew(context.Background(), deviceKey, pkix.Name{CommonName: "dev"}, cert, deviceKey)
	wantSCEPFail(t, err)
}

// Unknown invitation tokens and MachineInfo posts spend a source's budget;
// once it is used up the source gets a 429 with Retry-After and nothing is
// spent, even for a valid link. Valid links spend no budget.
func TestPublicEndpointsRateLimited(t *testing.T) {
	var clk *deptest.Clock
	now := func() time.Time { return clk.Now() }
	var refused []string
	count := ratelimit.WithObserver(func(n string) { refused = append(refused, n) })
	tokens, err := ratelimit.New("enroll_token", 2, 1, ratelimit.WithClock(now), count)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := ratelimit.New("enroll_machineinfo", 2, 1, ratelimit.WithClock(now), count)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, enroll.WithLimits(tokens, infos))
	clk = e.clock
	invite := func() string {
		code, body, _ := e.do(t, "POST", "/v1/enrollment/invitations", "application/json", `{}`)
		if code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
		return strings.TrimPrefix(decode[struct {
			URL string `json:"url"`
		}](t, body).URL, e.ts.URL)
	}
	for i := range 3 {
		if code, body, _ := e.do(t, "GET", invite(), "", ""); code != 200 {
			t.Fatalf("valid link %d: %d %s", i+1, code, body)
		}
	}
	for i := range 2 {
		if code, _, _ := e.do(t, "GET", "/enroll/guess-"+fmt.Sprint(i), "", ""); code != 404 {
			t.Fatalf("unknown token %d: %d, want 404", i+1, code)
		}
	}
	valid := invite()
	code, body, hdr := e.do(t, "GET", valid, "", "")
	if code != 429 || hdr.Get("Retry-After") != "60" || !strings.Contains(string(body), "too many enrollment attempts") {
		t.Fatalf("after 2 unknown tokens: %d Retry-After=%q %s, want 429 with Retry-After 60", code, hdr.Get("Retry-After"), body)
	}
	e.clock.Advance(time.Minute)
	if code, body, _ := e.do(t, "GET", valid, "", ""); code != 200 {
		t.Fatalf("the refused link after the refill: %d %s (was it spent by the refusal?)", code, body)
	}

	p := e.createConfigurator(t, true)
	for i := range 2 {
		if code, _, _ := e.do(t, "POST", "/enroll/configurator/"+p, "application/pkcs7-signature", "<plist/>"); code != 400 {
			t.Fatalf("MachineInfo post %d: %d, want 400", i+1, code)
		}
	}
	if code, _, hdr := e.do(t, "POST", "/enroll/configurator/"+p, "application/pkcs7-signature", "<plist/>"); code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("third MachineInfo post: %d Retry-After=%q, want 429", code, hdr.Get("Retry-After"))
	}
	if want := []string{"enroll_token", "enroll_machineinfo"}; !slices.Equal(refused, want) {
		t.Fatalf("refusals observed %v, want %v", refused, want)
	}
}
