package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
	"github.com/smallstep/pkcs7"
)

type env struct {
	ca    *pki.CA
	store *bolt.Store
	now   time.Time
	v     *identity.Verifier
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(filepath.Join(dir, "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{ca: ca, store: store, now: time.Now()}
	e.v, err = identity.NewVerifier(ca.Pool(), store, identity.WithClock(func() time.Time { return e.now }))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// issue signs a device certificate; record stores it as issued.
func (e *env) issue(t *testing.T, mutate func(*x509.Certificate), record bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: pki.RandomSerial(),
		Subject:      pkix.Name{CommonName: "device"},
		NotBefore:    e.now.Add(-time.Hour),
		NotAfter:     e.now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if mutate != nil {
		mutate(tmpl)
	}
	cert, err := e.ca.Sign(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if record {
		sum := sha256.Sum256(cert.Raw)
		if err := e.store.PutCert(context.Background(), &storage.CertRecord{Hash: hex.EncodeToString(sum[:]), Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter}); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}

func sign(t *testing.T, body []byte, cert *x509.Certificate, key *ecdsa.PrivateKey) string {
	t.Helper()
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func reason(err error) string {
	var ie *identity.Error
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return "not an identity error: " + err.Error()
}

func TestVerifyCert(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	good, _ := e.issue(t, nil, true)
	unrecorded, _ := e.issue(t, nil, false)
	serverAuth, _ := e.issue(t, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, true)
	expired, _ := e.issue(t, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = e.now.AddDate(-1, 0, 0), e.now.Add(-10*time.Minute)
	}, true)
	skewedExpiry, _ := e.issue(t, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = e.now.AddDate(-1, 0, 0), e.now.Add(-2*time.Minute)
	}, true)
	future, _ := e.issue(t, func(c *x509.Certificate) { c.NotBefore = e.now.Add(time.Hour) }, true)
	skewedStart, _ := e.issue(t, func(c *x509.Certificate) { c.NotBefore = e.now.Add(2 * time.Minute) }, true)
	foreign := newEnv(t)
	alien, _ := foreign.issue(t, nil, true)

	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string // "" accepts
	}{
		{"issued and recorded", good, ""},
		{"not recorded as issued", unrecorded, "unknown_cert"},
		{"server-auth only", serverAuth, "untrusted"},
		{"expired", expired, "expired"},
		{"expired within the allowed skew", skewedExpiry, ""},
		{"not valid yet", future, "expired"},
		{"valid within the allowed skew", skewedStart, ""},
		{"another CA", alien, "untrusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.v.VerifyCert(ctx, tc.cert)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && recordOf(t, id) == nil:
				t.Fatal("no issuance record")
			case tc.want != "" && reason(err) != tc.want:
				t.Fatalf("err = %v, want reason %s", err, tc.want)
			}
		})
	}
	if err := e.store.RevokeCert(ctx, good.SerialNumber.Text(16), e.now); err != nil {
		t.Fatal(err)
	}
	e.v.Forget(good.SerialNumber.Text(16))
	if _, err := e.v.VerifyCert(ctx, good); reason(err) != "revoked" {
		t.Fatalf("after revocation: %v", err)
	}
}

func TestVerifySignature(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cert, key := e.issue(t, nil, true)
	other, otherKey := e.issue(t, nil, true)
	body := []byte("<plist><dict/></plist>")
	id, err := e.v.VerifySignature(ctx, body, sign(t, body, cert, key))
	if err != nil || !certOf(t, id).Equal(cert) {
		t.Fatalf("good signature: %v", err)
	}
	// A signature by another device over the same body names that device.
	if id, err := e.v.VerifySignature(ctx, body, sign(t, body, other, otherKey)); err != nil || !certOf(t, id).Equal(other) {
		t.Fatalf("other signer: %v", err)
	}
	for _, tc := range []struct {
		name, sig string
		body      []byte
	}{
		{"missing", "", body},
		{"garbage", "bm90IGNtcw==", body},
		{"not base64", "***", body},
		{"other body", sign(t, []byte("something else"), cert, key), body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.v.VerifySignature(ctx, tc.body, tc.sig); !errors.Is(err, identity.ErrIdentity) {
				t.Fatalf("err = %v, want an identity failure", err)
			}
		})
	}
}

// VerifySigner judges the signer from the header alone, so a server can
// refuse an unknown certificate before reading the body; the signature
// over the body is checked by Verify afterwards.
func TestVerifySignerBeforeBody(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cert, key := e.issue(t, nil, true)
	unrecorded, unrecordedKey := e.issue(t, nil, false)
	body := []byte("<plist><dict/></plist>")

	if _, err := e.v.VerifySigner(ctx, sign(t, body, unrecorded, unrecordedKey)); reason(err) != "unknown_cert" {
		t.Fatalf("unrecorded signer: %v, want unknown_cert", err)
	}
	sig, err := e.v.VerifySigner(ctx, sign(t, body, cert, key))
	if err != nil || !certOf(t, sig.Signer()).Equal(cert) {
		t.Fatalf("good signer: %v", err)
	}
	if _, err := sig.Verify([]byte("another body")); reason(err) != "bad_signature" {
		t.Fatalf("signature over another body: %v, want bad_signature", err)
	}
	if id, err := sig.Verify(body); err != nil || !certOf(t, id).Equal(cert) {
		t.Fatalf("signed body: %v", err)
	}
}

// A signature the DER fast path declines (here BER with an indefinite
// length, which some CMS encoders write) is judged by the library.
func TestVerifySignatureBER(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cert, key := e.issue(t, nil, true)
	body := []byte("<plist><dict/></plist>")
	der, err := base64.StdEncoding.DecodeString(sign(t, body, cert, key))
	if err != nil {
		t.Fatal(err)
	}
	// Outer SEQUENCE: 30 82 hi lo ... becomes 30 80 ... 00 00.
	if der[0] != 0x30 || der[1] != 0x82 {
		t.Fatalf("unexpected DER header % x", der[:2])
	}
	ber := append(append([]byte{0x30, 0x80}, der[4:]...), 0, 0)
	sig := base64.StdEncoding.EncodeToString(ber)
	if id, err := e.v.VerifySignature(ctx, body, sig); err != nil || !certOf(t, id).Equal(cert) {
		t.Fatalf("BER signature: %v", err)
	}
	if _, err := e.v.VerifySignature(ctx, []byte("another body"), sig); reason(err) != "bad_signature" {
		t.Fatalf("BER signature over another body: %v, want bad_signature", err)
	}
}

// ForgetAll (another replica revoked something): cached records are
// dropped, and in read-through mode a revocation made behind the
// verifier's back is seen at once, until caching resumes.
func TestForgetAll(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cert, _ := e.issue(t, nil, true)
	other, _ := e.issue(t, nil, true)
	for _, c := range []*x509.Certificate{cert, other} {
		if _, err := e.v.VerifyCert(ctx, c); err != nil { // cached now
			t.Fatal(err)
		}
	}
	if err := e.store.RevokeCert(ctx, cert.SerialNumber.Text(16), e.now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.VerifyCert(ctx, cert); err != nil {
		t.Fatalf("the cached record should still answer before ForgetAll: %v", err)
	}
	e.v.ForgetAll(true)
	if _, err := e.v.VerifyCert(ctx, cert); reason(err) != "revoked" {
		t.Fatalf("after ForgetAll: %v", err)
	}
	// Read-through: a second revocation, with no Forget, is seen at once.
	if _, err := e.v.VerifyCert(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeCert(ctx, other.SerialNumber.Text(16), e.now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.VerifyCert(ctx, other); reason(err) != "revoked" {
		t.Fatalf("read-through answered from a cache: %v", err)
	}
}

func recordOf(t *testing.T, id *identity.Identity) *storage.CertRecord {
	t.Helper()
	rec, err := id.Record(context.Background())
	if err != nil {
		t.Fatalf("issuance record: %v", err)
	}
	return rec
}

// certOf is id's certificate.
func certOf(t *testing.T, id *identity.Identity) *x509.Certificate {
	t.Helper()
	c, err := id.Cert()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
