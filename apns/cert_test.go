package apns_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/apns/apnstest"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func pushCert(t testing.TB, opts ...apnstest.CertOption) *apnstest.Cert {
	t.Helper()
	c, err := apnstest.NewPushCert(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseP12(t *testing.T) {
	good := pushCert(t)
	p12, err := good.P12("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	noPass, err := good.P12("")
	if err != nil {
		t.Fatal(err)
	}
	modern, err := good.ModernP12("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	// A crafted file asking for a million KDF rounds must be refused before
	// any key derivation runs.
	heavy, err := pkcs12.LegacyDES.WithIterations(1_000_000).Encode(good.Key, good.Leaf, nil, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		data     []byte
		password string
		want     error
	}{
		{"right password", p12, "s3cret", nil},
		{"empty password", noPass, "", nil},
		{"wrong password", p12, "guess", apns.ErrBadPassword},
		{"OpenSSL 3 AES p12", modern, "s3cret", nil},
		{"OpenSSL 3 AES p12, wrong password", modern, "nope", apns.ErrBadPassword},
		{"a million iterations", heavy, "s3cret", apns.ErrMalformed},
		{"not a p12", []byte("hello"), "", apns.ErrMalformed},
		{"empty", nil, "", apns.ErrMalformed},
		{"truncated", p12[:len(p12)/2], "s3cret", apns.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := apns.ParseP12(tc.data, tc.password)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !errors.Is(err, apns.ErrInvalidCert) {
					t.Fatalf("err = %v, want %v wrapping ErrInvalidCert", err, tc.want)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pc.Topic != good.Topic {
				t.Errorf("topic = %q, want %q", pc.Topic, good.Topic)
			}
			if pc.Leaf.SerialNumber.Cmp(good.Leaf.SerialNumber) != 0 {
				t.Error("parsed a different certificate")
			}
		})
	}
}

func TestParsePEM(t *testing.T) {
	good := pushCert(t)
	other := pushCert(t)
	noUID := pushCert(t, apnstest.WithTopic(""))
	notMDM := pushCert(t, apnstest.WithTopic("com.example.app"))
	bare := pushCert(t, apnstest.WithTopic(apns.TopicPrefix))
	expired := pushCert(t, apnstest.WithValidity(time.Now().Add(-400*24*time.Hour), time.Now().Add(-time.Hour)))
	future := pushCert(t, apnstest.WithValidity(time.Now().Add(time.Hour), time.Now().Add(400*24*time.Hour)))
	encKey := legacyEncryptedKey(t, good.Key, "pw")

	tests := []struct {
		name          string
		cert, key     []byte
		password      string
		want          error
		wantSomeError bool // refused as invalid, reason unchecked
	}{
		{name: "pair", cert: good.CertPEM, key: good.KeyPEM},
		{name: "combined in one file", cert: append(append([]byte{}, good.CertPEM...), good.KeyPEM...)},
		{name: "encrypted key", cert: good.CertPEM, key: encKey, password: "pw"},
		{name: "encrypted key wrong password", cert: good.CertPEM, key: encKey, password: "no", wantSomeError: true},
		{name: "key of another cert", cert: good.CertPEM, key: other.KeyPEM, want: apns.ErrKeyMismatch},
		{name: "no UID", cert: noUID.CertPEM, key: noUID.KeyPEM, want: apns.ErrNoTopic},
		{name: "topic not com.apple.mgmt.", cert: notMDM.CertPEM, key: notMDM.KeyPEM, want: apns.ErrNotMDMTopic},
		{name: "topic is only the prefix", cert: bare.CertPEM, key: bare.KeyPEM, want: apns.ErrNotMDMTopic},
		{name: "expired", cert: expired.CertPEM, key: expired.KeyPEM, want: apns.ErrExpired},
		{name: "not yet valid", cert: future.CertPEM, key: future.KeyPEM, want: apns.ErrNotYetValid},
		{name: "TLS server cert fixture", cert: readFixture(t, "not-mdm.pem"), key: readFixture(t, "not-mdm.key"), want: apns.ErrNoTopic},
		{name: "no key", cert: good.CertPEM, want: apns.ErrMalformed},
		{name: "no cert", key: good.KeyPEM, want: apns.ErrMalformed},
		{name: "garbage", cert: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), key: good.KeyPEM, want: apns.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := apns.ParsePEM(tc.cert, tc.key, tc.password)
			if tc.want != nil || tc.wantSomeError {
				if !errors.Is(err, apns.ErrInvalidCert) || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("err = %v, want %v wrapping ErrInvalidCert", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pc.Topic != good.Topic || !strings.HasPrefix(pc.Topic, "com.apple.mgmt.External.") {
				t.Errorf("topic = %q, want %q", pc.Topic, good.Topic)
			}
		})
	}
}

func legacyEncryptedKey(t *testing.T, key *rsa.PrivateKey, password string) []byte {
	t.Helper()
	block, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte(password), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestPushCertPEMRoundTrip(t *testing.T) {
	c := pushCert(t)
	p12, err := c.P12("x")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := apns.ParseP12(p12, "x")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := pc.PEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := apns.ParsePEM(certPEM, keyPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	if back.Topic != c.Topic || !bytes.Equal(back.Leaf.Raw, c.Leaf.Raw) {
		t.Error("PEM round trip changed the certificate")
	}
	if s := pc.String(); strings.Contains(s, "PRIVATE") || !strings.Contains(s, c.Topic) {
		t.Errorf("String() = %q", s)
	}
	var nilCert *apns.PushCert
	if nilCert.String() == "" {
		t.Error("nil String() is empty")
	}
}

func TestStatusAndDaysLeft(t *testing.T) {
	c := pushCert(t)
	pc, err := apns.ParsePEM(c.CertPEM, c.KeyPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	end := pc.Leaf.NotAfter
	day := 24 * time.Hour
	tests := []struct {
		name   string
		now    time.Time
		status apns.Status
		days   int
	}{
		{"31 days left", end.Add(-31 * day), apns.StatusActive, 31},
		{"30 days and a second", end.Add(-30*day - time.Second), apns.StatusActive, 30},
		{"exactly 30 days", end.Add(-30 * day), apns.StatusExpiring, 30},
		{"36 hours", end.Add(-36 * time.Hour), apns.StatusExpiring, 1},
		{"one second", end.Add(-time.Second), apns.StatusExpiring, 0},
		{"an hour past", end.Add(time.Hour), apns.StatusExpired, -1},
		{"two days past", end.Add(2 * day), apns.StatusExpired, -2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pc.Status(tc.now); got != tc.status {
				t.Errorf("Status = %v, want %v", got, tc.status)
			}
			if got := pc.DaysLeft(tc.now); got != tc.days {
				t.Errorf("DaysLeft = %d, want %d", got, tc.days)
			}
		})
	}
	for s, want := range map[apns.Status]string{apns.StatusActive: "active", apns.StatusExpiring: "expiring", apns.StatusExpired: "expired", apns.Status(9): "Status(9)"} {
		if b, _ := s.MarshalText(); s.String() != want || string(b) != want {
			t.Errorf("%d: String %q, want %q", int(s), s, want)
		}
	}
}

func TestCheckRenewal(t *testing.T) {
	parse := func(c *apnstest.Cert) *apns.PushCert {
		pc, err := apns.ParsePEM(c.CertPEM, c.KeyPEM, "")
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}
	old := pushCert(t)
	current := parse(old)
	renewed := parse(pushCert(t, apnstest.WithTopic(old.Topic)))
	foreign := parse(pushCert(t))

	tests := []struct {
		name          string
		current, next *apns.PushCert
		force         bool
		want          error
	}{
		{"first upload", nil, current, false, nil},
		{"same topic", current, renewed, false, nil},
		{"different topic", current, foreign, false, apns.ErrTopicChanged},
		{"different topic forced", current, foreign, true, nil},
		{"nil next", current, nil, false, apns.ErrInvalidCert},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := apns.CheckRenewal(tc.current, tc.next, tc.force)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == apns.ErrTopicChanged {
				for _, s := range []string{current.Topic, foreign.Topic, "enrolled device"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
			}
		})
	}
}

func TestNewCSR(t *testing.T) {
	keyPEM, csrPEM, err := apns.NewCSR("Orchard MDM", "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	cb, _ := pem.Decode(csrPEM)
	if kb == nil || cb == nil || cb.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("bad PEM blocks: %v %v", kb, cb)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok || rsaKey.N.BitLen() != 2048 {
		t.Fatalf("key is %T, want RSA 2048", key)
	}
	csr, err := x509.ParseCertificateRequest(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	if !rsaKey.PublicKey.Equal(csr.PublicKey) {
		t.Error("CSR public key does not match the private key")
	}
	if csr.Subject.CommonName != "Orchard MDM" {
		t.Errorf("CN = %q", csr.Subject.CommonName)
	}
	var email string
	for _, n := range csr.Subject.Names {
		if n.Type.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}) {
			email, _ = n.Value.(string)
		}
	}
	if email != "admin@example.com" {
		t.Errorf("email = %q", email)
	}
	if _, _, err := apns.NewCSR("", ""); err == nil {
		t.Error("empty common name accepted")
	}
}

// FuzzParsePEM checks that no input panics and every refusal is a clear
// ErrInvalidCert.
func FuzzParsePEM(f *testing.F) {
	c := pushCert(f)
	f.Add(c.CertPEM, c.KeyPEM, "")
	f.Add(c.CertPEM, []byte{}, "")
	f.Add(c.CertPEM[:len(c.CertPEM)/2], c.KeyPEM, "x")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n-----END RSA PRIVATE KEY-----\n"), "")
	f.Fuzz(func(t *testing.T, cert, key []byte, password string) {
		pc, err := apns.ParsePEM(cert, key, password)
		checkParse(t, pc, err)
	})
}

// FuzzParseP12 is FuzzParsePEM for PKCS#12 input.
func FuzzParseP12(f *testing.F) {
	c := pushCert(f)
	p12, err := c.P12("pw")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p12, "pw")
	f.Add(p12[:40], "pw")
	f.Add([]byte{0x30, 0x80}, "")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		pc, err := apns.ParseP12(data, password)
		checkParse(t, pc, err)
	})
}

func checkParse(t *testing.T, pc *apns.PushCert, err error) {
	if err != nil {
		if !errors.Is(err, apns.ErrInvalidCert) {
			t.Fatalf("refusal does not wrap ErrInvalidCert: %v", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is not one line: %q", err)
		}
		return
	}
	if !strings.HasPrefix(pc.Topic, apns.TopicPrefix) {
		t.Fatalf("accepted topic %q", pc.Topic)
	}
	_ = pc.String()
}
