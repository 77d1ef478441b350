package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/simdevice"
)

// testCert is a certificate and its key, for building test chains.
type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var chainKeys = sync.OnceValue(func() []crypto.Signer {
	var keys []crypto.Signer
	for range 4 { // root, intermediate, leaf, forger
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	for range 4 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

var testSerial int64

// mint issues a CA certificate named cn for key, signed by parent (nil:
// self-signed) with SHA-1 with RSA when sha1 is set, else the default for
// the parent's key; opts change the template first.
func mint(t *testing.T, cn string, key crypto.Signer, parent *testCert, sha1 bool, opts ...func(*x509.Certificate)) *testCert {
	t.Helper()
	testSerial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(testSerial), Subject: pkix.Name{Organization: []string{"Test"}, CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	for _, o := range opts {
		o(tmpl)
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	var cert *x509.Certificate
	var err error
	if sha1 {
		cert, err = simdevice.IssueSHA1(tmpl, parentCert, key.Public(), parentKey.(*rsa.PrivateKey))
	} else {
		var der []byte
		if der, err = x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey); err == nil {
			cert, err = x509.ParseCertificate(der)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert, key}
}

func asLeaf(c *x509.Certificate) {
	c.IsCA, c.KeyUsage = false, x509.KeyUsageDigitalSignature
}

func notCA(c *x509.Certificate)      { c.IsCA = false }
func noCertSign(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }
func expired(c *x509.Certificate)    { c.NotAfter = time.Now().Add(-time.Minute) }
func notYet(c *x509.Certificate)     { c.NotBefore = time.Now().Add(time.Hour) }
func pathLenZero(c *x509.Certificate) {
	c.MaxPathLen, c.MaxPathLenZero = 0, true
}
func criticalUnknown(c *x509.Certificate) {
	c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}})
}

// badSignature is c with one bit of its signature flipped.
func badSignature(t *testing.T, c *x509.Certificate) *x509.Certificate {
	t.Helper()
	der := append([]byte(nil), c.Raw...)
	der[len(der)-1] ^= 1
	bad, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return bad
}

// Apple's real device chains are SHA-1 with RSA below the root: accepted
// when they end at the trusted root, refused for every broken link.
func TestVerifyAppleChainSHA1(t *testing.T) {
	k := chainKeys()
	root := mint(t, "Test Apple Root CA", k[0], nil, false)
	inter := mint(t, "Test Apple iPhone Device CA", k[1], root, true)
	leaf := mint(t, "device", k[2], inter, true, asLeaf)
	// A forger's root copies the name and key identifier, not the key.
	forger := mint(t, "Test Apple Root CA", k[3], nil, false, func(c *x509.Certificate) { c.SubjectKeyId = root.cert.SubjectKeyId })
	forgedInter := mint(t, "Test Apple iPhone Device CA", k[1], forger, true)
	forgedLeaf := mint(t, "device", k[2], forgedInter, true, asLeaf)
	strictRoot := mint(t, "Strict Root", k[0], nil, false, pathLenZero)
	strictInter := mint(t, "Strict Device CA", k[1], strictRoot, true)
	selfRoot := mint(t, "Untrusted Root", k[3], nil, true) // SHA-1 all the way, self-made
	selfInter := mint(t, "Test Apple iPhone Device CA", k[1], selfRoot, true)
	sub := func(name string, parent *testCert, opts ...func(*x509.Certificate)) *testCert {
		return mint(t, name, k[1], parent, true, opts...)
	}
	under := func(parent *testCert, opts ...func(*x509.Certificate)) *x509.Certificate {
		return mint(t, "device", k[2], parent, true, append([]func(*x509.Certificate){asLeaf}, opts...)...).cert
	}
	if leaf.cert.SignatureAlgorithm != x509.SHA1WithRSA || inter.cert.SignatureAlgorithm != x509.SHA1WithRSA {
		t.Fatalf("test chain signed with %v and %v, want SHA-1", leaf.cert.SignatureAlgorithm, inter.cert.SignatureAlgorithm)
	}
	if _, err := leaf.cert.Verify(x509.VerifyOptions{Roots: pool(root.cert), Intermediates: pool(inter.cert),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Fatal("crypto/x509 verified a SHA-1 chain: the test chain is not what Apple sends")
	}
	roots := []*x509.Certificate{root.cert}
	notCAInter, noSignInter := sub("Not a CA", root, notCA), sub("No certSign", root, noCertSign)
	expiredInter := sub("Expired CA", root, expired)
	many := make([]*x509.Certificate, maxChainCerts+1)
	for i := range many {
		many[i] = inter.cert
	}
	// maxChainDepth-1 intermediates: one too many with leaf and root.
	var deep []*x509.Certificate
	var levels []*testCert
	top := root
	for i := range maxChainDepth - 1 {
		top = sub("Level "+string(rune('A'+i)), top)
		deep, levels = append(deep, top.cert), append(levels, top)
	}
	tests := []struct {
		name   string
		leaf   *x509.Certificate
		certs  []*x509.Certificate
		roots  []*x509.Certificate
		refuse string // "" to accept
	}{
		{"Apple-shaped chain", leaf.cert, []*x509.Certificate{leaf.cert, inter.cert}, roots, ""},
		{"intermediates in any order, extras ignored", leaf.cert, []*x509.Certificate{forgedInter.cert, inter.cert, leaf.cert}, roots, ""},
		{"leaf signature wrong", badSignature(t, leaf.cert), []*x509.Certificate{inter.cert}, roots, "signature"},
		{"intermediate signature wrong", leaf.cert, []*x509.Certificate{badSignature(t, inter.cert)}, roots, "signature"},
		{"intermediate not a CA", under(notCAInter), []*x509.Certificate{notCAInter.cert}, roots, "not a CA"},
		{"intermediate without keyCertSign", under(noSignInter), []*x509.Certificate{noSignInter.cert}, roots, "may not sign"},
		{"leaf expired", under(inter, expired), []*x509.Certificate{inter.cert}, roots, "not valid at"},
		{"leaf not yet valid", under(inter, notYet), []*x509.Certificate{inter.cert}, roots, "not valid at"},
		{"intermediate expired", under(expiredInter), []*x509.Certificate{expiredInter.cert}, roots, "not valid at"},
		{"leaf critical extension", under(inter, criticalUnknown), []*x509.Certificate{inter.cert}, roots, "critical"},
		{"look-alike root", forgedLeaf.cert, []*x509.Certificate{forgedInter.cert}, roots, "signature"},
		{"look-alike root sent along", forgedLeaf.cert, []*x509.Certificate{forgedInter.cert, forger.cert}, roots, "signature"},
		{"SHA-1 to a self-made root", under(selfInter), []*x509.Certificate{selfInter.cert, selfRoot.cert}, roots, "no valid chain"},
		{"intermediate missing", leaf.cert, nil, roots, "no valid chain"},
		{"no roots", leaf.cert, []*x509.Certificate{inter.cert}, nil, "no valid chain"},
		{"path length", under(strictInter), []*x509.Certificate{strictInter.cert}, []*x509.Certificate{strictRoot.cert}, "allows 0 intermediates"},
		{"too many certificates", leaf.cert, many, roots, "at most"},
		{"too deep", under(top), deep, roots, "no valid chain"},
	}
	for _, tc := range tests {
		err := verifyAppleChain(tc.leaf, tc.certs, tc.roots, time.Now())
		switch {
		case tc.refuse == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse)):
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.refuse)
		}
	}
	// One intermediate fewer than the bound is still a chain.
	if err := verifyAppleChain(under(levels[len(levels)-2]), deep[:len(deep)-1], roots, time.Now()); err != nil {
		t.Errorf("chain at the depth bound: %v", err)
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// For SHA-256 chains the verifier agrees with crypto/x509 (except where
// it is stricter on purpose: keyCertSign on issuers and CA roots, cases
// left out here and refused above).
func TestVerifyAppleChainAgreesWithX509(t *testing.T) {
	k := chainKeys()[4:]
	root := mint(t, "Root", k[0], nil, false)
	inter := mint(t, "Device CA", k[1], root, false)
	inter2 := mint(t, "Device Sub CA", k[2], inter, false)
	forger := mint(t, "Root", k[3], nil, false)
	forgedInter := mint(t, "Device CA", k[1], forger, false)
	strictRoot := mint(t, "Strict Root", k[0], nil, false, pathLenZero)
	strictInter := mint(t, "Strict CA", k[1], strictRoot, false)
	strictInter2 := mint(t, "Strict Sub CA", k[2], strictInter, false)
	under := func(parent *testCert, opts ...func(*x509.Certificate)) *x509.Certificate {
		return mint(t, "device", k[3], parent, false, append([]func(*x509.Certificate){asLeaf}, opts...)...).cert
	}
	mid := func(name string, opts ...func(*x509.Certificate)) *testCert {
		return mint(t, name, k[1], root, false, opts...)
	}
	notCAInter, expiredInter, notYetInter := mid("Not CA", notCA), mid("Expired", expired), mid("Not yet", notYet)
	critInter := mid("Critical", criticalUnknown)
	tests := []struct {
		name  string
		leaf  *x509.Certificate
		certs []*x509.Certificate
		roots []*x509.Certificate
	}{
		{"one intermediate", under(inter), []*x509.Certificate{inter.cert}, []*x509.Certificate{root.cert}},
		{"two intermediates", under(inter2), []*x509.Certificate{inter2.cert, inter.cert}, []*x509.Certificate{root.cert}},
		{"straight from the root", under(root), nil, []*x509.Certificate{root.cert}},
		{"path length 0, no intermediate", under(strictRoot), nil, []*x509.Certificate{strictRoot.cert}},
		{"leaf signature wrong", badSignature(t, under(inter)), []*x509.Certificate{inter.cert}, []*x509.Certificate{root.cert}},
		{"intermediate signature wrong", under(inter), []*x509.Certificate{badSignature(t, inter.cert)}, []*x509.Certificate{root.cert}},
		{"intermediate not a CA", under(notCAInter), []*x509.Certificate{notCAInter.cert}, []*x509.Certificate{root.cert}},
		{"intermediate expired", under(expiredInter), []*x509.Certificate{expiredInter.cert}, []*x509.Certificate{root.cert}},
		{"intermediate not yet valid", under(notYetInter), []*x509.Certificate{notYetInter.cert}, []*x509.Certificate{root.cert}},
		{"intermediate critical extension", under(critInter), []*x509.Certificate{critInter.cert}, []*x509.Certificate{root.cert}},
		{"leaf expired", under(inter, expired), []*x509.Certificate{inter.cert}, []*x509.Certificate{root.cert}},
		{"look-alike root", under(forgedInter), []*x509.Certificate{forgedInter.cert, forger.cert}, []*x509.Certificate{root.cert}},
		{"two roots, the second one signs", under(inter), []*x509.Certificate{inter.cert}, []*x509.Certificate{forger.cert, root.cert}},
		{"intermediate missing", under(inter2), []*x509.Certificate{inter2.cert}, []*x509.Certificate{root.cert}},
		{"path length 0, one intermediate", under(strictInter), []*x509.Certificate{strictInter.cert}, []*x509.Certificate{strictRoot.cert}},
		{"path length 0, two intermediates", under(strictInter2), []*x509.Certificate{strictInter2.cert, strictInter.cert}, []*x509.Certificate{strictRoot.cert}},
	}
	for _, tc := range tests {
		ours := verifyAppleChain(tc.leaf, tc.certs, tc.roots, time.Now())
		_, theirs := tc.leaf.Verify(x509.VerifyOptions{Roots: pool(tc.roots...), Intermediates: pool(tc.certs...),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if (ours == nil) != (theirs == nil) {
			t.Errorf("%s: ours %v, crypto/x509 %v", tc.name, ours, theirs)
		}
	}
}
