package mdm

import (
	"errors"
	"fmt"

	"github.com/micromdm/plist"
)

// Status is what a device reports for the command it was given.
type Status string

// The statuses Apple defines for command reports.
const (
	StatusIdle               Status = "Idle"
	StatusAcknowledged       Status = "Acknowledged"
	StatusError              Status = "Error"
	StatusCommandFormatError Status = "CommandFormatError"
	StatusNotNow             Status = "NotNow"
)

// ErrorChainItem is one entry of a report's ErrorChain.
type ErrorChainItem struct {
	ErrorCode            int    `plist:",omitempty"`
	ErrorDomain          string `plist:",omitempty"`
	LocalizedDescription string `plist:",omitempty"`
	USEnglishDescription string `plist:",omitempty"`
}

// Report is a device's PUT to the server URL: a command result, or Idle.
// https://developer.apple.com/documentation/devicemanagement/implementing-device-management/sending-mdm-commands-to-a-device
type Report struct {
	Enrollment
	Status      Status
	CommandUUID string           `plist:",omitempty"`
	ErrorChain  []ErrorChainItem `plist:",omitempty"`
	// RequestType is sent by some devices; informational only.
	RequestType string `plist:",omitempty"`
	// The answers of DeviceInformation and SecurityInfo as decoded with
	// the report, so the inventory need not decode the plist again (any
	// type: what to make of an unexpected one is the reader's call).
	QueryResponses any `plist:",omitempty"`
	SecurityInfo   any `plist:",omitempty"`

	Channel Channel           `plist:"-"`
	Raw     []byte            `plist:"-"`
	Params  map[string]string `plist:"-"` // the request URL's query parameters (set by the transport)
}

// MaxCommandUUIDLen bounds command UUIDs.
const MaxCommandUUIDLen = 128

// DecodeReport parses and validates a command report.
func DecodeReport(raw []byte) (*Report, error) {
	r := new(Report)
	if !decodeFlatReport(raw, r) {
		*r = Report{}
		if err := Unmarshal(raw, r); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrParse, err)
		}
	}
	ch, err := r.Enrollment.Channel()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParse, err)
	}
	r.Channel, r.Raw = ch, raw
	switch r.Status {
	case StatusIdle:
		return r, nil
	case StatusAcknowledged, StatusError, StatusCommandFormatError, StatusNotNow:
	case "":
		return nil, fmt.Errorf("%w: no Status", ErrParse)
	default:
		return nil, fmt.Errorf("%w: unknown Status %.64q", ErrParse, r.Status)
	}
	if r.CommandUUID == "" {
		return nil, fmt.Errorf("%w: %s without CommandUUID", ErrParse, r.Status)
	}
	if len(r.CommandUUID) > MaxCommandUUIDLen {
		return nil, fmt.Errorf("%w: CommandUUID too long", ErrParse)
	}
	return r, nil
}

// CommandPayload is the inner dictionary of a command: RequestType and
// the request's own keys.
type CommandPayload map[string]any

// Envelope is what the server answers a device with.
type Envelope struct {
	CommandUUID string
	Command     CommandPayload
}

// ErrBadCommand is wrapped when a raw command plist is not a valid envelope.
var ErrBadCommand = errors.New("invalid command")

// EncodeCommand builds the plist Orchard sends for a command.
func EncodeCommand(uuid string, cmd CommandPayload) ([]byte, error) {
	if uuid == "" || len(uuid) > MaxCommandUUIDLen {
		return nil, fmt.Errorf("%w: bad CommandUUID", ErrBadCommand)
	}
	if rt, _ := cmd["RequestType"].(string); rt == "" {
		return nil, fmt.Errorf("%w: no RequestType", ErrBadCommand)
	}
	return plist.MarshalIndent(Envelope{CommandUUID: uuid, Command: cmd}, "\t")
}

// DecodeCommand reads a raw command envelope and returns its UUID and request type.
func DecodeCommand(raw []byte) (uuid, requestType string, cmd CommandPayload, err error) {
	var env Envelope
	if err := Unmarshal(raw, &env); err != nil {
		return "", "", nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	rt, _ := env.Command["RequestType"].(string)
	if rt == "" {
		return "", "", nil, fmt.Errorf("%w: no Command.RequestType", ErrBadCommand)
	}
	return env.CommandUUID, rt, env.Command, nil
}
