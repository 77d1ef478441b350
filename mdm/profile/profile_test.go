package profile_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
	"github.com/orchardmdm/orchard/mdm/profile"
	"github.com/orchardmdm/orchard/mdm/profile/internal/gen"
)

func wifi() map[string]any {
	return map[string]any{
		"PayloadType": "Configuration", "PayloadIdentifier": "com.example.wifi", "PayloadUUID": "6C1D8A2E-0000-4000-8000-000000000001",
		"PayloadVersion": 1, "PayloadDisplayName": "Office Wi-Fi",
		"PayloadContent": []any{map[string]any{
			"PayloadType": "com.apple.wifi.managed", "PayloadIdentifier": "com.example.wifi.office",
			"PayloadUUID": "6C1D8A2E-0000-4000-8000-000000000002", "PayloadVersion": 1,
			"SSID_STR": "Office", "EncryptionType": "WPA2", "Password": "not-logged",
		}},
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := plist.MarshalIndent(v, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signer(t *testing.T) *enrollprofile.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	s, err := enrollprofile.NewSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParsePlain(t *testing.T) {
	p, err := profile.Parse(encode(t, wifi()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Identifier != "com.example.wifi" || p.UUID != "6C1D8A2E-0000-4000-8000-000000000001" || p.Signed || !p.Removable {
		t.Fatalf("profile = %+v", p)
	}
	if len(p.Payloads) != 1 || p.Payloads[0].Type != "com.apple.wifi.managed" || !p.Payloads[0].Known || len(p.Warnings) != 0 {
		t.Fatalf("payloads = %+v, warnings %v", p.Payloads, p.Warnings)
	}
}

func TestParseSigned(t *testing.T) {
	plain := encode(t, wifi())
	signed, err := signer(t).Sign(plain)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Signed || !bytes.Equal(p.Plist, plain) || p.Identifier != "com.example.wifi" {
		t.Fatalf("signed profile = %+v", p)
	}
	// Change one byte of the signed content: the signature must fail.
	i := bytes.Index(signed, []byte("Office Wi-Fi"))
	if i < 0 {
		t.Fatal("content not found in the SignedData")
	}
	tampered := bytes.Clone(signed)
	tampered[i] = 'X'
	if _, err := profile.Parse(tampered); !errors.Is(err, profile.ErrInvalid) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("tampered profile: err = %v", err)
	}
}

func TestParseUnknownPayloadTypeWarns(t *testing.T) {
	m := wifi()
	m["PayloadContent"].([]any)[0].(map[string]any)["PayloadType"] = "com.example.future"
	p, err := profile.Parse(encode(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "com.example.future") || p.Payloads[0].Known {
		t.Fatalf("warnings = %v, payloads %+v", p.Warnings, p.Payloads)
	}
}

func TestParseRefuses(t *testing.T) {
	mut := func(f func(m map[string]any)) []byte {
		m := wifi()
		f(m)
		return encode(t, m)
	}
	first := func(m map[string]any) map[string]any { return m["PayloadContent"].([]any)[0].(map[string]any) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"too large", make([]byte, profile.MaxSize+1), "at most"},
		{"not a plist", []byte("hello"), "not an XML property list"},
		{"binary plist", []byte("bplist00\x00"), "not an XML property list"},
		{"garbage DER", []byte{0x30, 0x03, 0x02, 0x01}, "not CMS"},
		{"not Configuration", mut(func(m map[string]any) { m["PayloadType"] = "com.apple.wifi.managed" }), "want Configuration"},
		{"no identifier", mut(func(m map[string]any) { delete(m, "PayloadIdentifier") }), "PayloadIdentifier and PayloadUUID"},
		{"no uuid", mut(func(m map[string]any) { delete(m, "PayloadUUID") }), "PayloadIdentifier and PayloadUUID"},
		{"bad scope", mut(func(m map[string]any) { m["PayloadScope"] = "Everyone" }), "PayloadScope"},
		{"payload without uuid", mut(func(m map[string]any) { delete(first(m), "PayloadUUID") }), "payload 0 needs"},
		{"payload reuses top identifier", mut(func(m map[string]any) { first(m)["PayloadIdentifier"] = "com.example.wifi" }), "used twice"},
		{"two payloads one identifier", mut(func(m map[string]any) {
			m["PayloadContent"] = append(m["PayloadContent"].([]any), first(wifi()))
		}), "used twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := profile.Parse(c.data)
			if !errors.Is(err, profile.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "not-logged") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error leaks content or spans lines: %q", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string></dict></plist>`))
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := profile.Parse(b)
		if err == nil && (p.Identifier == "" || p.UUID == "") {
			t.Fatalf("accepted a profile without identifier or UUID")
		}
	})
}

func TestKnownPayloadTypes(t *testing.T) {
	for _, typ := range []string{"com.apple.wifi.managed", "com.apple.applicationaccess", "com.apple.vpn.managed"} {
		if !profile.KnownPayloadType(typ) {
			t.Errorf("%s is not known", typ)
		}
	}
	for _, typ := range []string{"TopLevel", "CommonPayloadKeys", "Configuration", ""} {
		if profile.KnownPayloadType(typ) {
			t.Errorf("%q should not be a payload type", typ)
		}
	}
}

func TestGeneratedIsCurrent(t *testing.T) { gen.Generator.CheckCurrent(t) }
