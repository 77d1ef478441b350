package profile

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/smallstep/pkcs7"
)

// MaxSize bounds an uploaded profile; Apple's largest real profiles (many
// certificates, big restrictions) stay well under a megabyte.
const MaxSize = 4 << 20

// MaxPayloads bounds PayloadContent.
const MaxPayloads = 1000

// ErrInvalid wraps every reason Parse refuses a profile.
var ErrInvalid = errors.New("invalid profile")

// Payload is one entry of a profile's PayloadContent.
type Payload struct {
	Type       string `json:"type"`
	Identifier string `json:"identifier"`
	UUID       string `json:"uuid"`
	Known      bool   `json:"known"` // the type is in Apple's profile schema
}

// Profile is a checked configuration profile.
type Profile struct {
	Identifier  string    `json:"identifier"` // top-level PayloadIdentifier
	UUID        string    `json:"uuid"`       // top-level PayloadUUID
	DisplayName string    `json:"display_name,omitempty"`
	Scope       string    `json:"payload_scope,omitempty"` // PayloadScope: System or User (macOS)
	Removable   bool      `json:"removable"`               // not PayloadRemovalDisallowed
	Payloads    []Payload `json:"payloads"`
	// Signed: the upload was CMS SignedData; Plist is then its content.
	Signed bool `json:"signed"`
	// Plist is the XML configuration plist.
	Plist []byte `json:"-"`
	// Warnings say what Orchard does not know (payload types outside
	// Apple's schema); the profile is still accepted.
	Warnings []string `json:"warnings,omitempty"`
}

type rawPayload struct {
	PayloadType       string
	PayloadIdentifier string
	PayloadUUID       string
	PayloadVersion    int
}

type rawProfile struct {
	rawPayload
	PayloadDisplayName       string
	PayloadScope             string
	PayloadRemovalDisallowed bool
	PayloadContent           []rawPayload
}

// Parse checks an uploaded .mobileconfig. A CMS-signed one must carry a
// valid signature over attached content (its signer is not required to
// chain to anything: Orchard re-signs it if asked). The plist must be a
// Configuration with a PayloadIdentifier and PayloadUUID, and every payload
// must have a type, an identifier unique in the profile, and a UUID.
func Parse(data []byte) (*Profile, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalid, len(data), MaxSize)
	}
	p := &Profile{}
	content := data
	if data[0] == 0x30 { // DER SEQUENCE: CMS, never the start of an XML plist
		p7, err := pkcs7.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%w: not a plist and not CMS: %w", ErrInvalid, err)
		}
		if len(p7.Content) == 0 {
			return nil, fmt.Errorf("%w: signed profile without attached content", ErrInvalid)
		}
		if err := p7.Verify(); err != nil {
			return nil, fmt.Errorf("%w: signature does not verify: %w", ErrInvalid, err)
		}
		content, p.Signed = p7.Content, true
	}
	var raw rawProfile
	if err := mdm.Unmarshal(content, &raw); err != nil {
		return nil, fmt.Errorf("%w: not an XML property list: %w", ErrInvalid, err)
	}
	if raw.PayloadType != "Configuration" {
		return nil, fmt.Errorf("%w: PayloadType is %q, want Configuration", ErrInvalid, short(raw.PayloadType))
	}
	if raw.PayloadIdentifier == "" || raw.PayloadUUID == "" {
		return nil, fmt.Errorf("%w: PayloadIdentifier and PayloadUUID are required", ErrInvalid)
	}
	switch raw.PayloadScope {
	case "", "System", "User":
	default:
		return nil, fmt.Errorf("%w: PayloadScope %q is not System or User", ErrInvalid, short(raw.PayloadScope))
	}
	if len(raw.PayloadContent) > MaxPayloads {
		return nil, fmt.Errorf("%w: %d payloads (at most %d)", ErrInvalid, len(raw.PayloadContent), MaxPayloads)
	}
	ids := map[string]bool{raw.PayloadIdentifier: true}
	for i, rp := range raw.PayloadContent {
		if rp.PayloadType == "" || rp.PayloadIdentifier == "" || rp.PayloadUUID == "" {
			return nil, fmt.Errorf("%w: payload %d needs PayloadType, PayloadIdentifier and PayloadUUID", ErrInvalid, i)
		}
		if ids[rp.PayloadIdentifier] {
			return nil, fmt.Errorf("%w: PayloadIdentifier %q is used twice", ErrInvalid, short(rp.PayloadIdentifier))
		}
		ids[rp.PayloadIdentifier] = true
		known := knownPayloadTypes[rp.PayloadType]
		if !known {
			p.Warnings = append(p.Warnings, fmt.Sprintf("payload %d: type %q is not in Apple's profile schema", i, short(rp.PayloadType)))
		}
		p.Payloads = append(p.Payloads, Payload{Type: rp.PayloadType, Identifier: rp.PayloadIdentifier, UUID: rp.PayloadUUID, Known: known})
	}
	p.Identifier, p.UUID = raw.PayloadIdentifier, raw.PayloadUUID
	p.DisplayName, p.Scope, p.Removable = raw.PayloadDisplayName, raw.PayloadScope, !raw.PayloadRemovalDisallowed
	p.Plist = bytes.Clone(content)
	return p, nil
}

// KnownPayloadType says whether Apple's profile schema has this type.
func KnownPayloadType(t string) bool { return knownPayloadTypes[t] }

// short keeps an echoed value to one short line.
func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
