package mdm

import (
	"errors"
	"fmt"
)

// MessageType names a check-in message.
type MessageType string

// The check-in message types Apple defines.
const (
	TypeAuthenticate          MessageType = "Authenticate"
	TypeTokenUpdate           MessageType = "TokenUpdate"
	TypeCheckOut              MessageType = "CheckOut"
	TypeUserAuthenticate      MessageType = "UserAuthenticate"
	TypeSetBootstrapToken     MessageType = "SetBootstrapToken"
	TypeGetBootstrapToken     MessageType = "GetBootstrapToken"
	TypeGetToken              MessageType = "GetToken"
	TypeDeclarativeManagement MessageType = "DeclarativeManagement"
)

// ErrParse is wrapped by every decoding failure: the body is bad input.
var ErrParse = errors.New("malformed message")

// Authenticate is the first message of an enrollment.
// https://developer.apple.com/documentation/devicemanagement/authenticaterequest
type Authenticate struct {
	MessageType MessageType
	Enrollment
	Topic        string
	DeviceName   string `plist:",omitempty"`
	Model        string `plist:",omitempty"`
	ModelName    string `plist:",omitempty"`
	ProductName  string `plist:",omitempty"`
	OSVersion    string `plist:",omitempty"`
	BuildVersion string `plist:",omitempty"`
	SerialNumber string `plist:",omitempty"`
	IMEI         string `plist:",omitempty"`
	MEID         string `plist:",omitempty"`
	Challenge    []byte `plist:",omitempty"`
}

// TokenUpdate carries a channel's push token and magic.
// https://developer.apple.com/documentation/devicemanagement/tokenupdaterequest
type TokenUpdate struct {
	MessageType MessageType
	Enrollment
	Topic                 string
	Token                 []byte
	PushMagic             string
	UnlockToken           []byte `plist:",omitempty"`
	AwaitingConfiguration bool   `plist:",omitempty"`
	NotOnConsole          bool   `plist:",omitempty"`
}

// CheckOut says the MDM profile was removed.
// https://developer.apple.com/documentation/devicemanagement/checkoutrequest
type CheckOut struct {
	MessageType MessageType
	Enrollment
	Topic string `plist:",omitempty"`
}

// UserAuthenticate asks whether a macOS network user may have a user channel.
// https://developer.apple.com/documentation/devicemanagement/userauthenticaterequest
type UserAuthenticate struct {
	MessageType MessageType
	Enrollment
	DigestResponse string `plist:",omitempty"`
}

// SetBootstrapToken escrows a macOS bootstrap token.
// https://developer.apple.com/documentation/devicemanagement/setbootstraptokenrequest
type SetBootstrapToken struct {
	MessageType MessageType
	Enrollment
	BootstrapToken        []byte `plist:",omitempty"`
	AwaitingConfiguration bool   `plist:",omitempty"`
}

// GetBootstrapToken asks for the escrowed bootstrap token.
// https://developer.apple.com/documentation/devicemanagement/getbootstraptokenrequest
type GetBootstrapToken struct {
	MessageType MessageType
	Enrollment
	AwaitingConfiguration bool `plist:",omitempty"`
}

// GetToken asks the server for a token for a service.
type GetToken struct {
	MessageType MessageType
	Enrollment
	TokenServiceType string
}

// DeclarativeManagement is a declarative device management request.
type DeclarativeManagement struct {
	MessageType MessageType
	Enrollment
	Endpoint string
	Data     []byte `plist:",omitempty"`
}

// Checkin is a decoded check-in message.
type Checkin struct {
	Type    MessageType
	Channel Channel
	Raw     []byte
	// Params are the query parameters of the request URL (set by the
	// transport; webhooks pass them on).
	Params map[string]string
	// Message is one of *Authenticate, *TokenUpdate, *CheckOut,
	// *UserAuthenticate, *SetBootstrapToken, *GetBootstrapToken, *GetToken,
	// *DeclarativeManagement.
	Message any
}

// DecodeCheckin parses and validates a check-in body.
func DecodeCheckin(raw []byte) (*Checkin, error) {
	var head struct {
		MessageType MessageType
		Enrollment
	}
	if err := Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrParse, err)
	}
	var msg any
	switch head.MessageType {
	case "":
		return nil, fmt.Errorf("%w: no MessageType", ErrParse)
	case TypeAuthenticate:
		msg = new(Authenticate)
	case TypeTokenUpdate:
		msg = new(TokenUpdate)
	case TypeCheckOut:
		msg = new(CheckOut)
	case TypeUserAuthenticate:
		msg = new(UserAuthenticate)
	case TypeSetBootstrapToken:
		msg = new(SetBootstrapToken)
	case TypeGetBootstrapToken:
		msg = new(GetBootstrapToken)
	case TypeGetToken:
		msg = new(GetToken)
	case TypeDeclarativeManagement:
		msg = new(DeclarativeManagement)
	default:
		return nil, fmt.Errorf("%w: unknown MessageType %.64q", ErrParse, head.MessageType)
	}
	if err := Unmarshal(raw, msg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrParse, head.MessageType, err)
	}
	ch, err := head.Enrollment.Channel()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParse, err)
	}
	c := &Checkin{Type: head.MessageType, Channel: ch, Raw: raw, Message: msg}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrParse, head.MessageType, err)
	}
	return c, nil
}

func (c *Checkin) validate() error {
	switch m := c.Message.(type) {
	case *Authenticate:
		if c.Channel.IsUser() {
			return errors.New("Authenticate is for the device channel only")
		}
		if m.Topic == "" {
			return errors.New("no Topic")
		}
	case *TokenUpdate:
		if m.Topic == "" || len(m.Token) == 0 || m.PushMagic == "" {
			return errors.New("Topic, Token and PushMagic are required")
		}
		if len(m.Token) > 256 || len(m.PushMagic) > 256 {
			return errors.New("Token or PushMagic too long")
		}
	case *UserAuthenticate:
		if !c.Channel.IsUser() {
			return errors.New("no UserID")
		}
	case *SetBootstrapToken, *GetBootstrapToken:
		if c.Channel.IsUser() {
			return errors.New("bootstrap tokens are for the device channel only")
		}
	}
	return nil
}
