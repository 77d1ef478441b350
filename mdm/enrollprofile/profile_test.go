package enrollprofile_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
	"github.com/orchardmdm/orchard/pki"
)

func selfSignedTLS(t *testing.T) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "mdm.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"mdm.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// payloads decodes a profile generically and indexes payloads by type.
func payloads(t *testing.T, data []byte) (map[string]any, map[string]map[string]any) {
	t.Helper()
	var top map[string]any
	if err := plist.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	byType := map[string]map[string]any{}
	for _, p := range top["PayloadContent"].([]any) {
		d := p.(map[string]any)
		byType[d["PayloadType"].(string)] = d
	}
	return top, byType
}

func TestBuildSignParse(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := enrollprofile.LoadOrCreateSigner(dir, ca)
	if err != nil {
		t.Fatal(err)
	}
	again, err := enrollprofile.LoadOrCreateSigner(dir, ca)
	if err != nil || !again.Certificate().Equal(signer.Certificate()) {
		t.Fatalf("signing pair not reused: %v", err)
	}
	tlsCert := selfSignedTLS(t)
	tests := []struct {
		name  string
		root  *x509.Certificate
		topic string
		dev   bool
	}{
		{"self-signed TLS", tlsCert, "com.apple.mgmt.External.1234", false},
		{"real TLS, sandbox APNs", nil, "com.apple.mgmt.External.5678", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := enrollprofile.Build(enrollprofile.Params{PublicURL: "https://mdm.example.com:8443/",
				Topic: tc.topic, Challenge: "abc.def", RootCert: tc.root, DevelopmentAPNS: tc.dev})
			if err != nil {
				t.Fatal(err)
			}
			signed, err := signer.Sign(raw)
			if err != nil {
				t.Fatal(err)
			}
			content, who, err := enrollprofile.Parse(signed, ca.Pool())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(content, raw) || !who.Equal(signer.Certificate()) {
				t.Fatal("parse returned other content or signer")
			}
			top, byType := payloads(t, content)
			wantTop := map[string]any{"PayloadType": "Configuration", "PayloadVersion": uint64(1),
				"PayloadIdentifier": "com.orchardmdm.enrollment", "PayloadScope": "System"}
			for k, v := range wantTop {
				if got := top[k]; got != v {
					t.Errorf("top-level %s = %#v, want %#v", k, got, v)
				}
			}
			// A date in the profile shows the device an expired MDM profile
			// later; download links expire on the server instead.
			if _, ok := top["PayloadExpirationDate"]; ok {
				t.Error("profile has PayloadExpirationDate")
			}
			for _, k := range []string{"PayloadUUID", "PayloadDisplayName", "PayloadOrganization"} {
				if s, _ := top[k].(string); s == "" {
					t.Errorf("top-level %s missing or not a string", k)
				}
			}
			sc := byType["com.apple.security.scep"]
			md := byType["com.apple.mdm"]
			if sc == nil || md == nil {
				t.Fatalf("payload types = %v", byType)
			}
			content2 := sc["PayloadContent"].(map[string]any)
			wantSCEP := map[string]any{"URL": "https://mdm.example.com:8443/scep", "Challenge": "abc.def",
				"Keysize": uint64(2048), "Key Type": "RSA", "Key Usage": uint64(5), "KeyIsExtractable": false}
			for k, v := range wantSCEP {
				if content2[k] != v {
					t.Errorf("SCEP %s = %#v, want %#v", k, content2[k], v)
				}
			}
			subj, ok := content2["Subject"].([]any)
			if !ok || len(subj) == 0 {
				t.Fatalf("Subject = %#v", content2["Subject"])
			}
			for _, rdn := range subj {
				pair := rdn.([]any)[0].([]any)
				if len(pair) != 2 {
					t.Errorf("subject pair %v", pair)
				}
				for _, s := range pair {
					if _, ok := s.(string); !ok {
						t.Errorf("subject item %#v is not a string", s)
					}
				}
			}
			wantMDM := map[string]any{"IdentityCertificateUUID": sc["PayloadUUID"], "Topic": tc.topic,
				"ServerURL": "https://mdm.example.com:8443/mdm/connect", "CheckInURL": "https://mdm.example.com:8443/mdm/checkin",
				"SignMessage": true, "AccessRights": uint64(8191), "CheckOutWhenRemoved": true, "PayloadVersion": uint64(1)}
			if dev, ok := md["UseDevelopmentAPNS"].(bool); tc.dev != dev || (tc.dev && !ok) {
				t.Errorf("UseDevelopmentAPNS = %#v, want %v", md["UseDevelopmentAPNS"], tc.dev)
			}
			for k, v := range wantMDM {
				if md[k] != v {
					t.Errorf("MDM %s = %#v, want %#v", k, md[k], v)
				}
			}
			caps, _ := md["ServerCapabilities"].([]any)
			if len(caps) != 2 || caps[0] != "com.apple.mdm.per-user-connections" || caps[1] != "com.apple.mdm.bootstraptoken" {
				t.Errorf("ServerCapabilities = %#v", md["ServerCapabilities"])
			}
			root, hasRoot := byType["com.apple.security.root"]
			if hasRoot != (tc.root != nil) {
				t.Fatalf("root payload present = %v, want %v", hasRoot, tc.root != nil)
			}
			if hasRoot {
				if der, _ := root["PayloadContent"].([]byte); !bytes.Equal(der, tlsCert.Raw) {
					t.Error("root payload is not the TLS certificate")
				}
			}
			uuids := map[any]bool{top["PayloadUUID"]: true}
			for _, p := range byType {
				uuids[p["PayloadUUID"]] = true
			}
			if len(uuids) != len(byType)+1 {
				t.Error("payload UUIDs are not distinct")
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pki.LoadOrCreateCA(dir)
	signer, _ := enrollprofile.LoadOrCreateSigner(dir, ca)
	signed, err := signer.Sign([]byte("<plist/>"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pki.LoadOrCreateCA(t.TempDir())
	tampered := bytes.Replace(signed, []byte("<plist/>"), []byte("<plist!>"), 1)
	tests := []struct {
		name  string
		data  []byte
		roots *x509.CertPool
	}{
		{"tampered content", tampered, ca.Pool()},
		{"untrusted signer", signed, other.Pool()},
		{"not CMS", []byte("<plist/>"), nil},
	}
	for _, tc := range tests {
		if _, _, err := enrollprofile.Parse(tc.data, tc.roots); err == nil {
			t.Errorf("%s: parsed", tc.name)
		}
	}
	for _, bad := range []string{"http://mdm.example.com", "mdm.example.com", ""} {
		if _, err := enrollprofile.Build(enrollprofile.Params{PublicURL: bad, Challenge: "x", Topic: "t"}); err == nil {
			t.Errorf("built with public URL %q", bad)
		}
	}
	if _, err := enrollprofile.Build(enrollprofile.Params{PublicURL: "https://a", Topic: "t"}); err == nil {
		t.Error("built without a challenge")
	}
	// An empty Topic makes a profile every device rejects.
	if _, err := enrollprofile.Build(enrollprofile.Params{PublicURL: "https://a", Challenge: "x"}); err == nil {
		t.Error("built without a push topic")
	}
}
