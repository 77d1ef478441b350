package enroll_test

import (
	"context"
	"crypto/x509"
	"strings"
	"sync"
	"testing"

	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/pki"
	"github.com/smallstep/pkcs7"
)

var testAppleSHA1 = sync.OnceValue(func() *simdevice.AppleChain {
	c, err := simdevice.NewAppleChainSHA1()
	if err != nil {
		panic(err)
	}
	return c
})

// Real devices' MachineInfo chains are signed with SHA-1 with RSA, which
// crypto/x509 refuses: through the Configurator endpoint such a chain to
// the trusted root enrolls Apple-verified, a look-alike SHA-1 chain, a
// broken one or an oversized certificate set is 403 and recorded.
func TestSetupAssistantProfileSHA1(t *testing.T) {
	apple := testAppleSHA1()
	forger, err := simdevice.NewAppleChainSHA1() // same names, other keys
	if err != nil {
		t.Fatal(err)
	}
	good := signedMachineInfo(t, apple, "UDID-1", "F7TLWCLBX196")
	p7, err := pkcs7.Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if alg := p7.Signers[0].DigestAlgorithm.Algorithm; !alg.Equal(pkcs7.OIDDigestAlgorithmSHA1) ||
		p7.GetOnlySigner().SignatureAlgorithm != x509.SHA1WithRSA || apple.Intermediate.SignatureAlgorithm != x509.SHA1WithRSA {
		t.Fatalf("test MachineInfo digest %v, signer certificate %v: not SHA-1 as Apple's", alg, p7.GetOnlySigner().SignatureAlgorithm)
	}

	e := newEnv(t, enroll.WithMachineInfoRoots(apple.Roots()))
	p := e.createConfigurator(t, false)
	e.do(t, "POST", "/v1/configurator/serials?profile_id="+p, "text/csv", "F7TLWCLBX196,lab\n")
	tests := []struct {
		name, body string
		status     int
		reason     string
	}{
		{"SHA-1 chain to the root", good, 200, ""},
		{"SHA-1 look-alike chain", signedMachineInfo(t, forger, "UDID-1", "F7TLWCLBX196"), 403, "no valid chain"},
		{"intermediate missing", machineInfoWith(t, apple, nil), 403, "no valid chain"},
		{"too many certificates", machineInfoWith(t, apple, manyOf(apple.Intermediate, 12)), 403, "at most"},
	}
	for _, tc := range tests {
		before := len(e.failures(t))
		code, body, _ := e.do(t, "POST", "/enroll/configurator/"+p, "application/pkcs7-signature", tc.body)
		if code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.status)
			continue
		}
		fs := e.failures(t)
		if tc.reason != "" {
			if len(fs) != before+1 || !strings.Contains(fs[before].Reason, tc.reason) {
				t.Errorf("%s: recorded %+v, want one failure saying %q", tc.name, fs[before:], tc.reason)
			}
			continue
		}
		cert, err := e.enrollWithProfile(t, body)
		if err != nil {
			t.Fatal(err)
		}
		if rec, _ := e.store.Cert(context.Background(), pki.Fingerprint(cert)); !rec.Authorization.AppleVerified {
			t.Errorf("%s: authorization %+v, want Apple-verified", tc.name, rec.Authorization)
		}
	}
}

// machineInfoWith is a MachineInfo signed by a device certificate of chain
// that carries certs instead of the chain's intermediate.
func machineInfoWith(t *testing.T, chain *simdevice.AppleChain, certs []*x509.Certificate) string {
	t.Helper()
	sd, err := pkcs7.NewSignedData([]byte(`<plist version="1.0"><dict><key>UDID</key><string>UDID-1</string>` +
		`<key>SERIAL</key><string>F7TLWCLBX196</string></dict></plist>`))
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA1)
	cert, key, err := chain.DeviceCert("F7TLWCLBX196")
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		sd.AddCertificate(c)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return string(der)
}

func manyOf(c *x509.Certificate, n int) []*x509.Certificate {
	out := make([]*x509.Certificate, n)
	for i := range out {
		out[i] = c
	}
	return out
}
