package scep_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/scep/scepclient"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
	smallscep "github.com/smallstep/scep"
)

var (
	keysOnce sync.Once
	keys     []*rsa.PrivateKey
	weakKey  *rsa.PrivateKey
)

// testKeys returns a few RSA 2048 keys shared by the tests (generation is slow).
func testKeys(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k)
		}
		var err error
		if weakKey, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
	})
	return keys
}

type env struct {
	ca     *pki.CA
	store  *bolt.Store
	srv    *scep.Server
	client *scepclient.Client
	url    string
	hc     *http.Client
	clock  *deptest.Clock
}

var (
	caOnce sync.Once
	caDir  string
)

// TestMain makes one CA for the package: RSA key generation dominates.
func TestMain(m *testing.M) {
	code := m.Run()
	if caDir != "" {
		os.RemoveAll(caDir)
	}
	os.Exit(code)
}

func newEnv(t testing.TB, opts ...scep.Option) *env {
	t.Helper()
	dir := t.TempDir()
	caOnce.Do(func() {
		var err error
		if caDir, err = os.MkdirTemp("", "orchard-scep-ca"); err != nil {
			panic(err)
		}
		if _, err := pki.LoadOrCreateCA(caDir); err != nil {
			panic(err)
		}
	})
	ca, err := pki.LoadOrCreateCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(dir, "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := deptest.NewClock(time.Now())
	srv, err := scep.New(ca, st, append([]scep.Option{scep.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scep", srv)
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(ts.Close)
	c, err := scepclient.New(ts.URL+"/scep", ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &env{ca: ca, store: st, srv: srv, client: c, url: ts.URL + "/scep", hc: ts.Client(), clock: clk}
}

func (e *env) challenge(t testing.TB, spec scep.ChallengeSpec) (string, *storage.Challenge) {
	t.Helper()
	secret, rec, err := scep.NewChallenge(spec, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutChallenge(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return secret, rec
}

func (e *env) certCount(t testing.TB) int {
	t.Helper()
	certs, err := e.store.ListCerts(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(certs)
}

var otaSpec = scep.ChallengeSpec{Kind: storage.KindInvitation, Ref: "inv-1", TTL: 15 * time.Minute}

func TestEnrollIssuesServerChosenCertificate(t *testing.T) {
	for _, viaGET := range []bool{false, true} {
		t.Run(map[bool]string{false: "POST", true: "GET"}[viaGET], func(t *testing.T) {
			e := newEnv(t)
			key := testKeys(t)[0]
			// The Apple-verified mark travels from challenge to certificate
			// record (one variant each way): takeovers read it there.
			spec := scep.ChallengeSpec{Kind: storage.KindConfigurator, Ref: "prof-1", ForSerial: "F7TLWCLBX196",
				AppleVerified: viaGET, TTL: 15 * time.Minute}
			secret, ch := e.challenge(t, spec)
			e.client.UseGET = viaGET
			ctx := context.Background()
			ca, err := e.client.CACert(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ca.Equal(e.ca.Cert) {
				t.Fatal("GetCACert returned another certificate")
			}
			// The CSR asks for a CA-ish subject, SANs and extensions: all ignored.
			evil := pkix.Name{CommonName: "Evil Root CA", Organization: []string{"Apple Inc."}}
			csr, err := scepclient.NewCSR(key, evil, secret, func(r *x509.CertificateRequest) {
				r.DNSNames = []string{"mdm.example.com"}
				r.EmailAddresses = []string{"admin@example.com"}
				r.IPAddresses = []net.IP{net.ParseIP("10.0.0.1")}
				r.URIs = []*url.URL{{Scheme: "https", Host: "evil"}}
			})
			if err != nil {
				t.Fatal(err)
			}
			signer, _ := scepclient.SelfSigned(key, evil)
			cert, err := e.client.Do(ctx, ca, smallscep.PKCSReq, csr, signer, key)
			if err != nil {
				t.Fatal(err)
			}
			checkIssued(t, e, cert, key)
			if cert.Subject.CommonName != "Orchard device F7TLWCLBX196" || cert.Subject.SerialNumber != "F7TLWCLBX196" {
				t.Errorf("subject = %v, want server-chosen with the bound serial", cert.Subject)
			}
			rec, err := e.store.Cert(ctx, pki.Fingerprint(cert))
			if err != nil {
				t.Fatalf("issued certificate not recorded: %v", err)
			}
			want := storage.CertAuthorization{Kind: storage.KindConfigurator, ChallengeID: ch.ID, Ref: "prof-1", ForSerial: "F7TLWCLBX196",
				AppleVerified: viaGET}
			if rec.Authorization != want || rec.Serial != scep.SerialString(cert) || !rec.NotAfter.Equal(cert.NotAfter) {
				t.Errorf("record = %+v, want authorization %+v", rec, want)
			}
			if strings.Contains(rec.Authorization.ChallengeID, ".") {
				t.Error("record holds the challenge secret")
			}
			if got := e.srv.Counts()[scep.OutcomeIssued]; got != 1 {
				t.Errorf("issued count = %d, want 1", got)
			}
		})
	}
}

func checkIssued(t *testing.T, e *env, cert *x509.Certificate, key *rsa.PrivateKey) {
	t.Helper()
	if _, err := cert.Verify(x509.VerifyOptions{Roots: e.ca.Pool(), CurrentTime: e.clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("issued certificate does not verify for client auth: %v", err)
	}
	if cert.IsCA || !cert.BasicConstraintsValid {
		t.Error("issued certificate is (or may be) a CA")
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(cert.UnknownExtKeyUsage) != 0 {
		t.Errorf("EKU = %v %v, want client auth only", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("key usage = %v", cert.KeyUsage)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d != 365*24*time.Hour {
		t.Errorf("validity = %v, want one year", d)
	}
	if len(cert.DNSNames)+len(cert.EmailAddresses)+len(cert.IPAddresses)+len(cert.URIs) != 0 {
		t.Error("SANs were copied from the CSR")
	}
	if cert.Subject.Organization[0] != "Orchard" || !strings.HasPrefix(cert.Subject.CommonName, "Orchard device ") {
		t.Errorf("subject = %v", cert.Subject)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("certificate is not for the requested key")
	}
}

func enroll(e *env, key *rsa.PrivateKey, secret string) (*x509.Certificate, error) {
	return e.client.Enroll(context.Background(), key, pkix.Name{CommonName: "device"}, secret)
}

func wantFail(t *testing.T, err error, info smallscep.FailInfo) {
	t.Helper()
	var fe *scepclient.FailError
	if !errors.As(err, &fe) || fe.Info != info {
		t.Fatalf("err = %v, want SCEP failure %s", err, info)
	}
}

func TestChallengeRules(t *testing.T) {
	tests := []struct {
		name   string
		multi  bool
		prep   func(t *testing.T, e *env, secret string, ch *storage.Challenge) string // returns the secret to send
		reason string
	}{
		{"wrong secret", false, func(t *testing.T, e *env, s string, ch *storage.Challenge) string {
			return ch.ID + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA"
		}, scep.ReasonChallengeInvalid},
		{"unknown id", false, func(t *testing.T, e *env, s string, ch *storage.Challenge) string {
			return "00000000000000000000." + strings.Split(s, ".")[1]
		}, scep.ReasonChallengeInvalid},
		{"missing", false, func(*testing.T, *env, string, *storage.Challenge) string { return "" }, scep.ReasonChallengeInvalid},
		{"garbage", false, func(*testing.T, *env, string, *storage.Challenge) string { return "hello" }, scep.ReasonChallengeInvalid},
		{"used", false, func(t *testing.T, e *env, s string, ch *storage.Challenge) string {
			if _, err := enroll(e, testKeys(t)[1], s); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return s
		}, scep.ReasonChallengeUsed},
		{"expired", false, func(t *testing.T, e *env, s string, ch *storage.Challenge) string {
			e.clock.Advance(15 * time.Minute)
			return s
		}, scep.ReasonChallengeExpired},
		{"multi-use expired", true, func(t *testing.T, e *env, s string, ch *storage.Challenge) string {
			e.clock.Advance(15*time.Minute + time.Second)
			return s
		}, scep.ReasonChallengeExpired},
		{"revoked", true, func(t *testing.T, e *env, s string, ch *storage.Challenge) string {
			if err := e.store.RevokeChallenge(context.Background(), ch.ID, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return s
		}, scep.ReasonChallengeRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			spec := otaSpec
			spec.MultiUse = tc.multi
			secret, ch := e.challenge(t, spec)
			send := tc.prep(t, e, secret, ch)
			before := e.certCount(t)
			_, err := enroll(e, testKeys(t)[0], send)
			wantFail(t, err, smallscep.BadRequest)
			if n := e.certCount(t); n != before {
				t.Errorf("refused request recorded a certificate (%d -> %d)", before, n)
			}
			if got := e.srv.Counts()[tc.reason]; got != 1 {
				t.Errorf("count[%s] = %d, want 1 (all: %v)", tc.reason, got, e.srv.Counts())
			}
		})
	}
}

func TestMultiUseChallenge(t *testing.T) {
	e := newEnv(t)
	secret, ch := e.challenge(t, scep.ChallengeSpec{Kind: storage.KindConfigurator, Ref: "p", MultiUse: true, TTL: 14 * 24 * time.Hour})
	for i := range 2 {
		if _, err := enroll(e, testKeys(t)[i], secret); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
		e.clock.Advance(24 * time.Hour)
	}
	got, _ := e.store.Challenge(context.Background(), ch.ID)
	if got.Uses != 2 {
		t.Errorf("uses = %d, want 2", got.Uses)
	}
}

func TestConcurrentSingleUseChallenge(t *testing.T) {
	e := newEnv(t)
	secret, _ := e.challenge(t, otaSpec)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = enroll(e, testKeys(t)[i%3], secret) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		wantFail(t, err, smallscep.BadRequest)
	}
	if wins != 1 || e.certCount(t) != 1 {
		t.Errorf("%d requests won and %d certificates recorded, want 1 and 1", wins, e.certCount(t))
	}
}

func TestUpdateReqRefused(t *testing.T) {
	// A message type without an authorization rule must not be treated as a
	// PKCSReq, even with a valid challenge (step-ca CVE-2026-30836).
	e := newEnv(t)
	secret, ch := e.challenge(t, otaSpec)
	key := testKeys(t)[0]
	csr, _ := scepclient.NewCSR(key, pkix.Name{CommonName: "x"}, secret)
	signer, _ := scepclient.SelfSigned(key, pkix.Name{CommonName: "x"})
	for _, typ := range []smallscep.MessageType{smallscep.UpdateReq, "99", smallscep.GetCert} {
		_, err := e.client.Do(context.Background(), e.ca.Cert, typ, csr, signer, key)
		wantFail(t, err, smallscep.BadRequest)
	}
	got, _ := e.store.Challenge(context.Background(), ch.ID)
	if got.Uses != 0 || e.certCount(t) != 0 {
		t.Errorf("refused types consumed the challenge (uses %d) or issued (%d)", got.Uses, e.certCount(t))
	}
	if c := e.srv.Counts()[scep.ReasonUnsupportedType]; c != 3 {
		t.Errorf("unsupported count = %d, want 3", c)
	}
	if _, err := enroll(e, key, secret); err != nil {
		t.Errorf("challenge unusable after refused UpdateReq: %v", err)
	}
}

func TestRenewal(t *testing.T) {
	ctx := context.Background()
	subject := pkix.Name{CommonName: "device"}
	tests := []struct {
		name string
		// prep returns the certificate and key to sign the renewal with.
		prep   func(t *testing.T, e *env, cur *x509.Certificate, key *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey)
		info   smallscep.FailInfo // "" = success
		reason string
	}{
		{"valid", func(t *testing.T, e *env, c *x509.Certificate, k *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
			return c, k
		}, "", scep.OutcomeIssued},
		{"revoked", func(t *testing.T, e *env, c *x509.Certificate, k *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
			if err := e.store.RevokeCert(ctx, scep.SerialString(c), e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return c, k
		}, smallscep.BadCertID, scep.ReasonRenewalRevoked},
		{"expired", func(t *testing.T, e *env, c *x509.Certificate, k *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
			e.clock.Advance(366 * 24 * time.Hour)
			return c, k
		}, smallscep.BadTime, scep.ReasonRenewalExpired},
		{"self-signed", func(t *testing.T, e *env, c *x509.Certificate, k *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
			s, _ := scepclient.SelfSigned(k, subject)
			return s, k
		}, smallscep.BadCertID, scep.ReasonRenewalForeign},
		{"foreign CA", func(t *testing.T, e *env, c *x509.Certificate, k *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
			other, err := pki.LoadOrCreateCA(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			tmpl := *c
			tmpl.Raw, tmpl.RawTBSCertificate = nil, nil
			fc, err := other.Sign(&tmpl, &k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			return fc, k
		}, smallscep.BadCertID, scep.ReasonRenewalForeign},
		{"our CA but never recorded", func(t *testing.T, e *env, c *x509.Certificate, k *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
			tmpl := *c
			tmpl.Raw, tmpl.RawTBSCertificate, tmpl.SerialNumber = nil, nil, pki.RandomSerial()
			uc, err := e.ca.Sign(&tmpl, &k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			return uc, k
		}, smallscep.BadCertID, scep.ReasonRenewalForeign},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			secret, _ := e.challenge(t, scep.ChallengeSpec{Kind: storage.KindInvitation, Ref: "inv", ForUDID: "UDID-1", TTL: time.Hour})
			k0, k1 := testKeys(t)[0], testKeys(t)[1]
			cur, err := enroll(e, k0, secret)
			if err != nil {
				t.Fatal(err)
			}
			signCert, signKey := tc.prep(t, e, cur, k0)
			before := e.certCount(t)
			renewed, err := e.client.Renew(ctx, k1, subject, signCert, signKey)
			if got := e.srv.Counts()[tc.reason]; got < 1 {
				t.Errorf("count[%s] = %d (all %v)", tc.reason, got, e.srv.Counts())
			}
			if tc.info != "" {
				wantFail(t, err, tc.info)
				if e.certCount(t) != before {
					t.Error("refused renewal recorded a certificate")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkIssued(t, e, renewed, k1)
			rec, err := e.store.Cert(ctx, pki.Fingerprint(renewed))
			if err != nil {
				t.Fatal(err)
			}
			want := storage.CertAuthorization{Kind: storage.KindRenewal, Ref: "inv", ForUDID: "UDID-1", RenewalOf: pki.Fingerprint(cur)}
			if rec.Authorization != want {
				t.Errorf("renewal authorization = %+v, want %+v", rec.Authorization, want)
			}
		})
	}
}

func TestWeakKeyRefused(t *testing.T) {
	e := newEnv(t)
	testKeys(t)
	secret, ch := e.challenge(t, otaSpec)
	_, err := enroll(e, weakKey, secret)
	wantFail(t, err, smallscep.BadRequest)
	if e.srv.Counts()[scep.ReasonWeakKey] != 1 || e.certCount(t) != 0 {
		t.Errorf("counts %v, certs %d", e.srv.Counts(), e.certCount(t))
	}
	if got, _ := e.store.Challenge(context.Background(), ch.ID); got.Uses != 0 {
		t.Error("weak-key request consumed the challenge")
	}
}

func TestHTTPErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, query, body string
		status              int
	}{
		{"GET", "", "", 400},
		{"GET", "operation=Nope", "", 400},
		{"POST", "operation=PKIOperation", "not cms", 400},
		{"POST", "operation=PKIOperation", "", 400},
		{"GET", "operation=PKIOperation&message=%%%", "", 400},
		{"GET", "operation=PKIOperation&message=aGVsbG8=", "", 400},
		{"GET", "operation=PKIOperation", "", 400},
		{"POST", "operation=GetCACert", "", 405},
		{"GET", "operation=GetCACaps", "", 200},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, e.url+"?"+tc.query, strings.NewReader(tc.body))
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s ?%s: status %d, want %d", tc.method, tc.query, resp.StatusCode, tc.status)
		}
	}
	big := strings.NewReader(strings.Repeat("a", 300<<10))
	resp, err := e.hc.Post(e.url+"?operation=PKIOperation", "application/x-pki-message", big)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", resp.StatusCode)
	}
	if got := e.srv.Counts()[scep.ReasonMalformed]; got == 0 {
		t.Error("oversized body not counted as malformed")
	}
}

// Wrong challenges from one address use up its budget, after which even a
// valid request gets a 429 with Retry-After; successful enrollments from
// the same address spend nothing.
func TestWrongChallengesRateLimited(t *testing.T) {
	var clk *deptest.Clock
	lim, err := ratelimit.New("scep", 3, 60, ratelimit.WithClock(func() time.Time { return clk.Now() }))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, scep.WithLimiter(lim))
	clk = e.clock
	key := testKeys(t)[0]
	secret, ch := e.challenge(t, scep.ChallengeSpec{Kind: storage.KindProfile, MultiUse: true, TTL: time.Hour})
	for i := range 5 {
		if _, err := enroll(e, key, secret); err != nil {
			t.Fatalf("enrollment %d: %v", i+1, err)
		}
	}
	for range 3 {
		_, err := enroll(e, key, ch.ID+".AAAAAAAAAAAAAAAAAAAAAAAAAAA")
		wantFail(t, err, smallscep.BadRequest)
	}
	issued := e.certCount(t)
	csr, _ := scepclient.NewCSR(key, pkix.Name{CommonName: "device"}, secret)
	signer, _ := scepclient.SelfSigned(key, pkix.Name{CommonName: "device"})
	raw, err := scepclient.BuildMessage(e.ca.Cert, smallscep.PKCSReq, csr, signer, key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.hc.Post(e.url+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(string(body), "wrong challenges") {
		t.Fatalf("after 3 wrong challenges: %d Retry-After=%q %q, want 429 with Retry-After 1",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := e.certCount(t); n != issued {
		t.Fatalf("a refused request issued a certificate (%d -> %d)", issued, n)
	}
	if got := e.srv.Counts()[scep.ReasonRateLimited]; got != 1 {
		t.Fatalf("count[rate_limited] = %d, want 1", got)
	}
	// One token refills in a second.
	e.clock.Advance(time.Second)
	if _, err := enroll(e, key, secret); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

func FuzzPKIOperation(f *testing.F) {
	e := newEnv(f)
	key := testKeys(f)[0]
	secret, _ := e.challenge(f, scep.ChallengeSpec{Kind: storage.KindProfile, MultiUse: true, TTL: time.Hour})
	for _, typ := range []smallscep.MessageType{smallscep.PKCSReq, smallscep.RenewalReq, smallscep.UpdateReq} {
		csr, _ := scepclient.NewCSR(key, pkix.Name{CommonName: "f"}, secret)
		signer, _ := scepclient.SelfSigned(key, pkix.Name{CommonName: "f"})
		raw, err := scepclient.BuildMessage(e.ca.Cert, typ, csr, signer, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Add([]byte{0x30, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		before := e.srv.Counts()[scep.OutcomeIssued]
		_, status := e.srv.PKIOperation(context.Background(), raw)
		if status != 200 && status != 400 {
			t.Errorf("status %d", status)
		}
		if status == 400 && e.srv.Counts()[scep.OutcomeIssued] != before {
			t.Error("a malformed message issued a certificate")
		}
	})
}
