package dep_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/dep/deptest"
)

func TestKeyPairIsCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	a, err := dep.LoadOrCreateKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dep.LoadOrCreateKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Cert.Equal(b.Cert) {
		t.Fatal("second load made a new certificate")
	}
	fi, err := os.Stat(filepath.Join(dir, "dep.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(string(a.CertPEM()), "BEGIN CERTIFICATE") {
		t.Fatal("CertPEM is not PEM")
	}
}

func TestNewKeyPairRefusesNonRSAOrMismatch(t *testing.T) {
	k := sharedKeys(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := dep.NewKeyPair(k.Cert, ec); err == nil {
		t.Fatal("accepted an EC key")
	}
	other, err := dep.LoadOrCreateKeyPair(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dep.NewKeyPair(k.Cert, other.Key); err == nil {
		t.Fatal("accepted a key that does not match the certificate")
	}
	if _, err := dep.NewKeyPair(nil, nil); err == nil {
		t.Fatal("accepted nil")
	}
}

func TestDecryptToken(t *testing.T) {
	k := sharedKeys(t)
	other, err := dep.LoadOrCreateKeyPair(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tok := deptest.NewToken()
	good := deptest.P7M(t, k.Cert, tok)
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"good", good, ""},
		{"bare base64 body", []byte(strings.SplitN(string(good), "\r\n\r\n", 2)[1]), ""},
		{"encrypted to another server", deptest.P7M(t, other.Cert, tok), "another MDM server"},
		{"empty", nil, "empty"},
		{"not base64", []byte("Content-Type: application/pkcs7-mime\r\n\r\n!!!"), "base64"},
		{"not pkcs7", deptest.SMIME([]byte{0x30, 0x03, 0x02, 0x01, 0x01}), "PKCS#7"},
		{"no message block", deptest.P7MRaw(t, k.Cert, `{"consumer_key":"x"}`), "BEGIN/END MESSAGE"},
		{"not json", deptest.P7MRaw(t, k.Cert, "-----BEGIN MESSAGE-----\nnope\n-----END MESSAGE-----"), "not JSON"},
		{"missing secret", deptest.P7MRaw(t, k.Cert, "-----BEGIN MESSAGE-----\n{\"consumer_key\":\"a\",\"access_token\":\"b\"}\n-----END MESSAGE-----"), "lacks"},
		{"bad expiry", deptest.P7MRaw(t, k.Cert, "-----BEGIN MESSAGE-----\n{\"consumer_key\":\"a\",\"consumer_secret\":\"b\",\"access_token\":\"c\",\"access_secret\":\"d\",\"access_token_expiry\":\"soon\"}\n-----END MESSAGE-----"), "access_token_expiry"},
		{"too large", make([]byte, 70<<10), "larger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := k.DecryptToken(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.ConsumerKey != tok.ConsumerKey || c.AccessSecret != tok.AccessSecret || !c.AccessTokenExpiry.Equal(tok.Expiry) {
					t.Fatalf("wrong credentials: %v", c)
				}
				if strings.Contains(c.String(), tok.AccessSecret) || strings.Contains(c.String(), tok.ConsumerSecret) {
					t.Fatal("String reveals a secret")
				}
				return
			}
			if !errors.Is(err, dep.ErrBadToken) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrBadToken mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzDecryptToken(f *testing.F) {
	k := sharedKeys(f)
	f.Add(deptest.P7M(f, k.Cert, deptest.NewToken()))
	f.Add([]byte("Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\nMAA="))
	f.Add([]byte{0x30, 0x80, 0x06})
	f.Add([]byte("-----BEGIN MESSAGE-----"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := k.DecryptToken(data); err != nil && !errors.Is(err, dep.ErrBadToken) {
			t.Fatalf("error not wrapped in ErrBadToken: %v", err)
		}
	})
}
