package mdm

import (
	"errors"
	"fmt"
	"strings"
)

// MaxIDLen bounds every identifier a device sends.
const MaxIDLen = 128

// ErrBadID is wrapped by every identifier validation failure.
var ErrBadID = errors.New("invalid identifier")

// validDeviceID accepts Apple's UDID and EnrollmentID shapes: hex digits,
// letters and dashes (40-hex legacy UDIDs, 8-16 hex pairs, UUIDs). Nothing
// else, so a device key can never contain the user-channel separator.
func validDeviceID(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrBadID)
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadID, MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' {
			return fmt.Errorf("%w: character %q not allowed", ErrBadID, c)
		}
	}
	return nil
}

// validUserID accepts user GUIDs and the short IDs Shared iPad and User
// Enrollment use; never the channel separator.
func validUserID(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrBadID)
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadID, MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("-._@", rune(c)) {
			return fmt.Errorf("%w: character %q not allowed", ErrBadID, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ChannelSeparator joins a device ID and a user ID into a user channel key.
const ChannelSeparator = ":"

// Enrollment identifies who sent a message: a device (UDID, or EnrollmentID
// for User Enrollment) and optionally a user on it.
type Enrollment struct {
	UDID             string `plist:",omitempty"`
	EnrollmentID     string `plist:",omitempty"`
	UserID           string `plist:",omitempty"`
	EnrollmentUserID string `plist:",omitempty"`
	UserShortName    string `plist:",omitempty"`
	UserLongName     string `plist:",omitempty"`
}

// SharedIPadUserID is the UserID every Shared iPad user's messages carry;
// the user is told apart by UserShortName.
const SharedIPadUserID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

// IsSharedIPadUserID reports whether a UserID is the Shared iPad one.
func IsSharedIPadUserID(id string) bool { return strings.EqualFold(id, SharedIPadUserID) }

// Channel is a validated command channel.
type Channel struct {
	DeviceID string // UDID or EnrollmentID
	// UserID is the user part of the key: the UserID (macOS), the
	// UserShortName (Shared iPad) or the EnrollmentUserID; "" for the
	// device channel.
	UserID         string
	UserEnrollment bool // keyed by EnrollmentID
	SharedIPad     bool // a Shared iPad user, keyed by UserShortName
}

// ID is the channel's storage key: the device ID, or deviceID:userID.
func (c Channel) ID() string {
	if c.UserID == "" {
		return c.DeviceID
	}
	return c.DeviceID + ChannelSeparator + c.UserID
}

// IsUser reports whether this is a user channel.
func (c Channel) IsUser() bool { return c.UserID != "" }

// Channel validates the identifiers and returns the channel they name.
func (e Enrollment) Channel() (Channel, error) {
	var c Channel
	switch {
	case e.UDID != "" && e.EnrollmentID != "":
		return c, fmt.Errorf("%w: both UDID and EnrollmentID", ErrBadID)
	case e.UDID != "":
		if err := validDeviceID(e.UDID); err != nil {
			return c, fmt.Errorf("UDID: %w", err)
		}
		c.DeviceID = e.UDID
		if e.EnrollmentUserID != "" {
			return c, fmt.Errorf("%w: EnrollmentUserID without EnrollmentID", ErrBadID)
		}
		switch {
		case IsSharedIPadUserID(e.UserID):
			// Every Shared iPad user sends the same UserID: keying by it
			// would give all of them one queue.
			if err := validUserID(e.UserShortName); err != nil {
				return c, fmt.Errorf("UserShortName of a Shared iPad user: %w", err)
			}
			if IsSharedIPadUserID(e.UserShortName) {
				return c, fmt.Errorf("%w: UserShortName is the Shared iPad UserID", ErrBadID)
			}
			c.UserID, c.SharedIPad = e.UserShortName, true
		case e.UserID != "":
			if err := validUserID(e.UserID); err != nil {
				return c, fmt.Errorf("UserID: %w", err)
			}
			c.UserID = e.UserID
		}
	case e.EnrollmentID != "":
		if err := validDeviceID(e.EnrollmentID); err != nil {
			return c, fmt.Errorf("EnrollmentID: %w", err)
		}
		c.DeviceID, c.UserEnrollment = e.EnrollmentID, true
		if e.UserID != "" {
			// Ignoring it would route a user's message to the device channel.
			return c, fmt.Errorf("%w: UserID with EnrollmentID (User Enrollment uses EnrollmentUserID)", ErrBadID)
		}
		if e.EnrollmentUserID != "" {
			if err := validUserID(e.EnrollmentUserID); err != nil {
				return c, fmt.Errorf("EnrollmentUserID: %w", err)
			}
			c.UserID = e.EnrollmentUserID
		}
	default:
		return c, fmt.Errorf("%w: no UDID or EnrollmentID", ErrBadID)
	}
	return c, nil
}

// ParseChannelID splits and validates a storage key (as given to the
// admin API): "device" or "device:user".
func ParseChannelID(id string) (Channel, error) {
	dev, user, isUser := strings.Cut(id, ChannelSeparator)
	if err := validDeviceID(dev); err != nil {
		return Channel{}, err
	}
	c := Channel{DeviceID: dev}
	if isUser {
		if err := validUserID(user); err != nil {
			return Channel{}, err
		}
		c.UserID = user
	}
	return c, nil
}

// FoldDeviceID returns the form in which device IDs compare. Apple's hex
// device IDs are case-insensitive: legacy 40-hex UDIDs, the 8-16 form with
// a dash (00008030-001A35E11E88802E) and UUIDs fold to upper case, so one
// device can never hold two records by changing the case of its ID. Any
// other ID is returned as is. Records keep the device's own spelling; this
// is only for comparing and indexing.
func FoldDeviceID(id string) string {
	if !isHexDeviceID(id) {
		return id
	}
	return strings.ToUpper(id)
}

// SameDeviceID reports whether two device IDs name the same device.
func SameDeviceID(a, b string) bool { return a == b || FoldDeviceID(a) == FoldDeviceID(b) }

func isHexDeviceID(id string) bool {
	var groups []int // lengths of the dash-separated hex groups
	n := 0
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c == '-':
			groups, n = append(groups, n), 0
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			n++
		default:
			return false
		}
	}
	groups = append(groups, n)
	switch len(groups) {
	case 1:
		return groups[0] == 40
	case 2:
		return groups[0] == 8 && groups[1] == 16
	case 5:
		return groups[0] == 8 && groups[1] == 4 && groups[2] == 4 && groups[3] == 4 && groups[4] == 12
	}
	return false
}
