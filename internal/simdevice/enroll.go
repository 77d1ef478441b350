package simdevice

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/scep/scepclient"
	"github.com/smallstep/pkcs7"
)

// ProfileSettings are what a device takes from an enrollment profile,
// read with Apple's published payload keys only.
type ProfileSettings struct {
	SCEPURL     string
	Challenge   string
	Subject     pkix.Name
	ServerURL   string
	CheckInURL  string
	Topic       string
	SignMessage bool
	// Roots are the certificates of the profile's com.apple.security.root
	// payloads: a device trusts them for TLS once the profile is installed.
	Roots []*x509.Certificate
}

// ReadProfile extracts the SCEP and MDM payloads from a (signed or plain)
// .mobileconfig, as any client following Apple's payload keys would.
func ReadProfile(mobileconfig []byte) (*ProfileSettings, error) {
	content := mobileconfig
	if p7, err := pkcs7.Parse(mobileconfig); err == nil && len(p7.Content) > 0 {
		content = p7.Content
	}
	var profile struct {
		PayloadContent []map[string]any
	}
	if err := plist.Unmarshal(content, &profile); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	var s ProfileSettings
	for _, p := range profile.PayloadContent {
		switch p["PayloadType"] {
		case "com.apple.security.scep":
			c, _ := p["PayloadContent"].(map[string]any)
			s.SCEPURL, _ = c["URL"].(string)
			s.Challenge, _ = c["Challenge"].(string)
			if rdn, ok := c["Subject"].([]any); ok {
				for _, set := range rdn {
					for _, attr := range asSlice(set) {
						pair := asSlice(attr)
						if len(pair) == 2 {
							k, _ := pair[0].(string)
							v, _ := pair[1].(string)
							switch k {
							case "CN":
								s.Subject.CommonName = v
							case "O":
								s.Subject.Organization = append(s.Subject.Organization, v)
							}
						}
					}
				}
			}
		case "com.apple.security.root":
			der, _ := p["PayloadContent"].([]byte)
			cert, err := parseCertData(der)
			if err != nil {
				return nil, fmt.Errorf("profile root payload: %w", err)
			}
			s.Roots = append(s.Roots, cert)
		case "com.apple.mdm":
			s.ServerURL, _ = p["ServerURL"].(string)
			s.CheckInURL, _ = p["CheckInURL"].(string)
			s.Topic, _ = p["Topic"].(string)
			s.SignMessage, _ = p["SignMessage"].(bool)
		}
	}
	if s.SCEPURL == "" || s.ServerURL == "" {
		return nil, errors.New("profile has no SCEP or MDM payload")
	}
	if s.CheckInURL == "" {
		s.CheckInURL = s.ServerURL // Apple: check-ins go to ServerURL when CheckInURL is absent
	}
	return &s, nil
}

// parseCertData reads a certificate payload's data: DER, or PEM as some
// profile tools write it.
func parseCertData(b []byte) (*x509.Certificate, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	return x509.ParseCertificate(b)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// EnrollFromProfile does what a device does with an enrollment profile:
// gets an identity certificate by SCEP with the profile's challenge, then
// points d at the profile's MDM URLs. key is the device's new RSA key.
func (d *Device) EnrollFromProfile(ctx context.Context, mobileconfig []byte, key *rsa.PrivateKey, hc *http.Client) error {
	ps, err := ReadProfile(mobileconfig)
	if err != nil {
		return err
	}
	return d.EnrollWith(ctx, ps, key, hc)
}

// EnrollWith gets the device's identity certificate by SCEP with the
// settings a profile gave (or a server without profiles documents) and
// points d at the MDM URLs.
func (d *Device) EnrollWith(ctx context.Context, ps *ProfileSettings, key *rsa.PrivateKey, hc *http.Client) error {
	sc, err := scepclient.New(ps.SCEPURL, hc)
	if err != nil {
		return err
	}
	cert, err := sc.Enroll(ctx, key, ps.Subject, ps.Challenge)
	if err != nil {
		return fmt.Errorf("scep: %w", err)
	}
	d.Cert, d.Key = cert, key
	d.ServerURL, d.CheckinURL = ps.ServerURL, ps.CheckInURL
	if ps.Topic != "" {
		d.Topic = ps.Topic
	}
	d.Client = hc
	return nil
}

// MachineInfo is what a device in Setup Assistant POSTs to an enrollment
// URL (ADE or Apple Configurator): its identity, CMS-signed. A real device
// signs with its Apple-issued device certificate and includes the
// intermediates; the simulator does the same with d.Apple's test chain, or
// with a self-signed certificate (what a forger can make) when d.Apple is
// nil.
func (d *Device) MachineInfo() ([]byte, error) {
	content, err := plist.Marshal(map[string]any{
		"UDID": d.UDID, "SERIAL": d.SerialNumber, "PRODUCT": d.ProductName, "VERSION": d.BuildVersion,
		"OS_VERSION": d.OSVersion, "MDM_CAN_REQUEST_SOFTWARE_UPDATE": !d.CannotUpdateInSetup,
	})
	if err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	if d.Apple != nil {
		cert, key, err := d.Apple.DeviceCert(d.SerialNumber)
		if err != nil {
			return nil, err
		}
		if d.Apple.sha1 {
			sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA1)
		}
		// AddSigner and AddCertificate rather than AddSignerChain, which
		// checks the chain with crypto/x509 and so refuses SHA-1 links.
		if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
			return nil, err
		}
		sd.AddCertificate(d.Apple.Intermediate)
		return sd.Finish()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Apple Device " + d.SerialNumber},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	cert, err := pki.SelfSigned(tmpl, key)
	if err != nil {
		return nil, err
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

// InstallEnrollmentProfile does what a device does when an InstallProfile
// command brings it a new enrollment profile (Orchard's identity renewal):
// it enrolls key by SCEP with the profile's challenge, then sends
// Authenticate and TokenUpdate signed with the new certificate. From then
// on d uses the new identity.
func (d *Device) InstallEnrollmentProfile(ctx context.Context, mobileconfig []byte, key *rsa.PrivateKey) error {
	ps, err := ReadProfile(mobileconfig)
	if err != nil {
		return err
	}
	oldCert, oldKey := d.Cert, d.Key
	if err := d.EnrollWith(ctx, ps, key, d.Client); err != nil {
		return err
	}
	if err := d.Enroll(ctx); err != nil {
		d.Cert, d.Key = oldCert, oldKey
		return err
	}
	return nil
}

// RenewingAnswerer answers like Answer, except that an InstallProfile
// carrying an enrollment profile is installed (InstallEnrollmentProfile
// with a new key from newKey) and acknowledged with the new identity. A
// failed installation answers Error and is kept in *failed.
func (d *Device) RenewingAnswerer(ctx context.Context, newKey func() *rsa.PrivateKey, failed *error) Answerer {
	return func(c *Command) (string, map[string]any) {
		if c.RequestType != "InstallProfile" {
			return d.Answer(c)
		}
		payload, _ := c.Payload["Payload"].([]byte)
		if _, err := ReadProfile(payload); err != nil {
			return d.Answer(c) // not an enrollment profile
		}
		if err := d.InstallEnrollmentProfile(ctx, payload, newKey()); err != nil {
			if failed != nil {
				*failed = err
			}
			return "Error", map[string]any{"ErrorChain": []map[string]any{{
				"ErrorCode": 4001, "ErrorDomain": "MCInstallationErrorDomain", "USEnglishDescription": "profile installation failed",
			}}}
		}
		return "Acknowledged", nil
	}
}
