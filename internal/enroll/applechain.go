package enroll

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Bounds on what a MachineInfo's CMS may make the chain builder do: a real
// device sends its certificate and two intermediates.
const (
	maxChainCerts = 8 // certificates in the CMS
	maxChainDepth = 5 // certificates in a path, leaf and root included
)

// errNoAppleChain is why a signer's certificate did not verify.
var errNoAppleChain = errors.New("no valid chain to a trusted root")

// chainAlgorithms are the certificate signature algorithms accepted on a
// path to a trusted MachineInfo root. SHA-1 with RSA is here because
// Apple's device CAs still sign with it and crypto/x509 no longer verifies
// it; it is safe only because the path must end at a root we pinned.
var chainAlgorithms = map[x509.SignatureAlgorithm]bool{
	x509.SHA1WithRSA:      true,
	x509.SHA256WithRSA:    true,
	x509.SHA384WithRSA:    true,
	x509.SHA512WithRSA:    true,
	x509.ECDSAWithSHA256:  true,
	x509.ECDSAWithSHA384:  true,
	x509.ECDSAWithSHA512:  true,
	x509.SHA256WithRSAPSS: true,
	x509.SHA384WithRSAPSS: true,
	x509.SHA512WithRSAPSS: true,
}

// verifyAppleChain checks that leaf chains to one of roots at now through
// some of certs (the CMS's certificates): each link by name, key
// identifiers and the issuer's signature, every certificate in its
// validity window, every issuer a CA allowed to sign certificates within
// its path length. crypto/x509's Verify does all this but refuses SHA-1,
// which Apple's device chains use, hence a verifier of its own for
// MachineInfo and nothing else.
func verifyAppleChain(leaf *x509.Certificate, certs, roots []*x509.Certificate, now time.Time) error {
	if len(certs) > maxChainCerts {
		return fmt.Errorf("%d certificates in MachineInfo, at most %d", len(certs), maxChainCerts)
	}
	if err := usable(leaf, now); err != nil {
		return fmt.Errorf("device certificate: %w", err)
	}
	v := chainVerifier{certs: certs, roots: roots, now: now, links: map[[2]*x509.Certificate]error{}}
	return v.extend([]*x509.Certificate{leaf})
}

type chainVerifier struct {
	certs, roots []*x509.Certificate
	now          time.Time
	// links caches each child-issuer check, so the search does at most
	// one signature check per pair however many paths it tries.
	links map[[2]*x509.Certificate]error
	// last is the latest refused link of a matching name, for the report.
	last error
}

// extend tries to finish path (leaf first) at a root, directly or through
// one more intermediate.
func (v *chainVerifier) extend(path []*x509.Certificate) error {
	child := path[len(path)-1]
	// below is how many intermediates an issuer of child would sit above.
	below := len(path) - 1
	for _, root := range v.roots {
		if v.try(child, root, below) {
			return nil
		}
	}
	if len(path)+1 < maxChainDepth {
		for _, c := range v.certs {
			if !inPath(path, c) && v.try(child, c, below) && v.extend(append(path, c)) == nil {
				return nil
			}
		}
	}
	if v.last != nil {
		return fmt.Errorf("%w: %w", errNoAppleChain, v.last)
	}
	return errNoAppleChain
}

// try reports whether issuer may be child's next link, keeping why not.
func (v *chainVerifier) try(child, issuer *x509.Certificate, below int) bool {
	err := v.link(child, issuer, below)
	if err != nil && !errors.Is(err, errNotIssuer) {
		v.last = err
	}
	return err == nil
}

var errNotIssuer = errors.New("not the issuer")

// link checks that issuer issued child and may, with below intermediates
// under it.
func (v *chainVerifier) link(child, issuer *x509.Certificate, below int) error {
	if !bytes.Equal(child.RawIssuer, issuer.RawSubject) ||
		len(child.AuthorityKeyId) > 0 && len(issuer.SubjectKeyId) > 0 && !bytes.Equal(child.AuthorityKeyId, issuer.SubjectKeyId) {
		return errNotIssuer
	}
	key := [2]*x509.Certificate{child, issuer}
	err, done := v.links[key]
	if !done {
		err = checkLink(child, issuer, v.now)
		v.links[key] = err
	}
	if err != nil {
		return err
	}
	if issuer.MaxPathLen >= 0 && below > issuer.MaxPathLen {
		return fmt.Errorf("%q allows %d intermediates below it, the path has %d", issuer.Subject.CommonName, issuer.MaxPathLen, below)
	}
	return nil
}

func checkLink(child, issuer *x509.Certificate, now time.Time) error {
	name := issuer.Subject.CommonName
	if err := usable(issuer, now); err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	if !issuer.BasicConstraintsValid || !issuer.IsCA {
		return fmt.Errorf("%q is not a CA", name)
	}
	if issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%q may not sign certificates", name)
	}
	if hasNameConstraints(issuer) {
		return fmt.Errorf("%q has name constraints, not supported here", name)
	}
	if !chainAlgorithms[child.SignatureAlgorithm] {
		return fmt.Errorf("%q signed with %v, not accepted", child.Subject.CommonName, child.SignatureAlgorithm)
	}
	// CheckSignature (unlike CheckSignatureFrom) still verifies SHA-1.
	if err := issuer.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
		return fmt.Errorf("%q signature by %q: %w", child.Subject.CommonName, name, err)
	}
	return nil
}

// usable checks what applies to every certificate on the path.
func usable(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("not valid at %s (valid %s to %s)", now.UTC().Format(time.RFC3339),
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(c.UnhandledCriticalExtensions) > 0 {
		return errors.New("unhandled critical extension")
	}
	return nil
}

func hasNameConstraints(c *x509.Certificate) bool {
	return len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+len(c.PermittedIPRanges)+len(c.ExcludedIPRanges)+
		len(c.PermittedEmailAddresses)+len(c.ExcludedEmailAddresses)+len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) > 0
}

func inPath(path []*x509.Certificate, c *x509.Certificate) bool {
	for _, p := range path {
		if p == c || bytes.Equal(p.Raw, c.Raw) {
			return true
		}
	}
	return false
}
