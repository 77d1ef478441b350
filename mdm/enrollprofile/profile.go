// Package enrollprofile owns the MDM enrollment profile: the .mobileconfig
// that makes a device get an identity by SCEP and enroll in Orchard, its
// CMS signature, and the key that signs it.
package enrollprofile

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/mdm"
)

// Params is what goes into one enrollment profile.
type Params struct {
	// PublicURL is the server's base URL as devices reach it (https://host[:port]).
	PublicURL string
	// Topic is the push certificate topic; required (a device refuses an
	// MDM payload without one).
	Topic string
	// DevelopmentAPNS makes the device use Apple's development push
	// servers, to match a server pushing through the sandbox.
	DevelopmentAPNS bool
	// Challenge is the SCEP challenge secret for this profile.
	Challenge string
	// Subject is the subject the device asks for, as [oid-name, value]
	// pairs; the server chooses the real subject anyway.
	Subject [][2]string
	// RootCert, when set, is installed as a trusted root: pass the server's
	// TLS certificate when it is self-signed, nil otherwise.
	RootCert *x509.Certificate
	// Organization and DisplayName are shown on the device.
	Organization string
	DisplayName  string
	Description  string
}

// Identifier is the enrollment profile's PayloadIdentifier. It is stable
// so a re-enrollment replaces the profile, and RemoveProfile of it unenrolls.
const Identifier = "com.orchardmdm.enrollment"

// AccessRights: all MDM rights (1 through 4096 summed).
const accessRightsAll = 8191

type profile struct {
	PayloadType         string `plist:"PayloadType"`
	PayloadVersion      int    `plist:"PayloadVersion"`
	PayloadIdentifier   string `plist:"PayloadIdentifier"`
	PayloadUUID         string `plist:"PayloadUUID"`
	PayloadDisplayName  string `plist:"PayloadDisplayName"`
	PayloadDescription  string `plist:"PayloadDescription,omitempty"`
	PayloadOrganization string `plist:"PayloadOrganization"`
	PayloadScope        string `plist:"PayloadScope"`
	PayloadContent      []any  `plist:"PayloadContent"`
}

type payloadHeader struct {
	PayloadType        string `plist:"PayloadType"`
	PayloadVersion     int    `plist:"PayloadVersion"`
	PayloadIdentifier  string `plist:"PayloadIdentifier"`
	PayloadUUID        string `plist:"PayloadUUID"`
	PayloadDisplayName string `plist:"PayloadDisplayName"`
}

type scepPayload struct {
	payloadHeader
	PayloadContent scepContent `plist:"PayloadContent"`
}

type scepContent struct {
	URL       string       `plist:"URL"`
	Name      string       `plist:"Name"`
	Subject   [][][]string `plist:"Subject"`
	Challenge string       `plist:"Challenge"`
	Keysize   int          `plist:"Keysize"`
	KeyType   string       `plist:"Key Type"`
	KeyUsage  int          `plist:"Key Usage"`
	// KeyIsExtractable false keeps the identity key in the keychain (macOS).
	KeyIsExtractable bool `plist:"KeyIsExtractable"`
}

type mdmPayload struct {
	payloadHeader
	IdentityCertificateUUID string   `plist:"IdentityCertificateUUID"`
	Topic                   string   `plist:"Topic"`
	ServerURL               string   `plist:"ServerURL"`
	CheckInURL              string   `plist:"CheckInURL"`
	SignMessage             bool     `plist:"SignMessage"`
	AccessRights            int      `plist:"AccessRights"`
	CheckOutWhenRemoved     bool     `plist:"CheckOutWhenRemoved"`
	ServerCapabilities      []string `plist:"ServerCapabilities"`
	UseDevelopmentAPNS      bool     `plist:"UseDevelopmentAPNS,omitempty"`
}

type rootPayload struct {
	payloadHeader
	PayloadCertificateFileName string `plist:"PayloadCertificateFileName"`
	PayloadContent             []byte `plist:"PayloadContent"`
}

// Build returns the unsigned profile plist (XML).
func Build(p Params) ([]byte, error) {
	base, err := url.Parse(p.PublicURL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("enrollprofile: public URL %q must be an absolute https URL", p.PublicURL)
	}
	if p.Challenge == "" {
		return nil, errors.New("enrollprofile: a SCEP challenge is required")
	}
	if p.Topic == "" {
		return nil, errors.New("enrollprofile: a push topic is required (upload an MDM push certificate first)")
	}
	root := strings.TrimSuffix(base.String(), "/")
	if p.Organization == "" {
		p.Organization = "Orchard"
	}
	if p.DisplayName == "" {
		p.DisplayName = "Orchard MDM enrollment"
	}
	if len(p.Subject) == 0 {
		p.Subject = [][2]string{{"O", p.Organization}, {"CN", "Orchard device"}}
	}
	subject := make([][][]string, len(p.Subject))
	for i, kv := range p.Subject {
		subject[i] = [][]string{{kv[0], kv[1]}}
	}
	scepUUID := mdm.NewUUID()
	content := []any{
		scepPayload{
			payloadHeader: header("com.apple.security.scep", Identifier+".scep", scepUUID, "Device identity"),
			PayloadContent: scepContent{
				URL: root + "/scep", Name: "Orchard", Subject: subject, Challenge: p.Challenge,
				Keysize: 2048, KeyType: "RSA", KeyUsage: 5, // 1 signing + 4 encryption
			},
		},
		mdmPayload{
			payloadHeader:           header("com.apple.mdm", Identifier+".mdm", mdm.NewUUID(), "Device management"),
			IdentityCertificateUUID: scepUUID,
			Topic:                   p.Topic,
			ServerURL:               root + "/mdm/connect",
			CheckInURL:              root + "/mdm/checkin",
			SignMessage:             true,
			AccessRights:            accessRightsAll,
			CheckOutWhenRemoved:     true,
			ServerCapabilities:      []string{"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"},
			UseDevelopmentAPNS:      p.DevelopmentAPNS,
		},
	}
	if p.RootCert != nil {
		// First, so the server is trusted before the device connects to it.
		content = append([]any{rootPayload{
			payloadHeader:              header("com.apple.security.root", Identifier+".root", mdm.NewUUID(), "Orchard server certificate"),
			PayloadCertificateFileName: "orchard-server.cer",
			PayloadContent:             p.RootCert.Raw,
		}}, content...)
	}
	prof := profile{
		PayloadType: "Configuration", PayloadVersion: 1, PayloadIdentifier: Identifier, PayloadUUID: mdm.NewUUID(),
		PayloadDisplayName: p.DisplayName, PayloadDescription: p.Description, PayloadOrganization: p.Organization,
		PayloadScope: "System", PayloadContent: content,
	}
	return plist.MarshalIndent(prof, "\t")
}

func header(typ, id, uuid, name string) payloadHeader {
	return payloadHeader{PayloadType: typ, PayloadVersion: 1, PayloadIdentifier: id, PayloadUUID: uuid, PayloadDisplayName: name}
}
