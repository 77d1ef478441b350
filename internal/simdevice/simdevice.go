// Package simdevice is a simulated Apple device for tests and load
// generation: it speaks the public MDM protocol over real HTTP, signing
// every body with its identity certificate in Mdm-Signature exactly as a
// device whose enrollment profile sets SignMessage does.
package simdevice

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"
)

// Device is one simulated device.
type Device struct {
	UDID         string
	SerialNumber string
	Model        string
	ModelName    string
	ProductName  string
	OSVersion    string
	BuildVersion string
	DeviceName   string
	Topic        string
	Token        []byte
	PushMagic    string
	Supervised   bool // what it answers to IsSupervised
	// CannotUpdateInSetup: its MachineInfo says MDM_CAN_REQUEST_SOFTWARE_UPDATE
	// false (a device too old to update during Setup Assistant).
	CannotUpdateInSetup bool
	// Apple signs the device's MachineInfo (nil: a self-signed certificate).
	Apple *AppleChain

	Cert *x509.Certificate
	Key  crypto.Signer
	// NoSigningTime signs without signed attributes, so the signature
	// carries no signing time: for tests that run the server's clock ahead
	// of the real one (a certificate issued "next year" is not valid now).
	NoSigningTime bool

	// DDM is what the device holds of Declarative Device Management.
	DDM DDMState

	CheckinURL string // <public-url>/mdm/checkin
	ServerURL  string // <public-url>/mdm/connect
	Client     *http.Client
}

// StatusError is a non-200 answer from the server.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Code, e.Body) }

// Sign returns the Mdm-Signature header value for body.
func (d *Device) Sign(body []byte) (string, error) {
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		return "", err
	}
	add := sd.AddSigner
	if d.NoSigningTime {
		add = sd.SignWithoutAttr
	}
	if err := add(d.Cert, d.Key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", err
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// Put sends a signed body and returns the answer; non-200 is a *StatusError.
func (d *Device) Put(ctx context.Context, url, contentType string, body []byte) ([]byte, error) {
	sig, err := d.Sign(body)
	if err != nil {
		return nil, err
	}
	return d.PutSigned(ctx, url, contentType, body, sig)
}

// PutSigned sends body with the given signature header (tests use it to
// send mismatched signatures).
func (d *Device) PutSigned(ctx context.Context, url, contentType string, body []byte, sig string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" { // "" sends none, as some clients do
		req.Header.Set("Content-Type", contentType)
	}
	if sig != "" {
		req.Header.Set("Mdm-Signature", sig)
	}
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, &StatusError{Code: resp.StatusCode, Body: string(bytes.TrimSpace(out))}
	}
	return out, nil
}

// Checkin sends a check-in message (any struct or map) to the check-in URL.
func (d *Device) Checkin(ctx context.Context, msg any) ([]byte, error) {
	body, err := plist.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return d.Put(ctx, d.CheckinURL, "application/x-apple-aspen-mdm-checkin", body)
}

// Authenticate sends the device's Authenticate message.
func (d *Device) Authenticate(ctx context.Context) error {
	_, err := d.Checkin(ctx, map[string]any{
		"MessageType":  "Authenticate",
		"UDID":         d.UDID,
		"Topic":        d.Topic,
		"SerialNumber": d.SerialNumber,
		"Model":        d.Model,
		"ModelName":    d.ModelName,
		"ProductName":  d.ProductName,
		"OSVersion":    d.OSVersion,
		"BuildVersion": d.BuildVersion,
		"DeviceName":   d.DeviceName,
	})
	return err
}

// TokenUpdate sends the device channel's push token and magic.
func (d *Device) TokenUpdate(ctx context.Context) error {
	_, err := d.Checkin(ctx, map[string]any{
		"MessageType": "TokenUpdate",
		"UDID":        d.UDID,
		"Topic":       d.Topic,
		"Token":       d.Token,
		"PushMagic":   d.PushMagic,
	})
	return err
}

// Enroll runs Authenticate then TokenUpdate.
func (d *Device) Enroll(ctx context.Context) error {
	if err := d.Authenticate(ctx); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	if err := d.TokenUpdate(ctx); err != nil {
		return fmt.Errorf("token update: %w", err)
	}
	return nil
}

// Command is a command the server handed the device.
type Command struct {
	UUID        string
	RequestType string
	Payload     map[string]any
}

// Report sends a report (Idle when status is "Idle") with extra keys and
// returns the next command, or nil when the server had none.
func (d *Device) Report(ctx context.Context, status, commandUUID string, extra map[string]any) (*Command, error) {
	msg := map[string]any{"UDID": d.UDID, "Status": status}
	if commandUUID != "" {
		msg["CommandUUID"] = commandUUID
	}
	for k, v := range extra {
		msg[k] = v
	}
	body, err := plist.Marshal(msg)
	if err != nil {
		return nil, err
	}
	resp, err := d.Put(ctx, d.ServerURL, "application/x-apple-aspen-mdm", body)
	if err != nil {
		return nil, err
	}
	return ParseCommand(resp)
}

// Idle reports Idle and returns the first queued command, if any.
func (d *Device) Idle(ctx context.Context) (*Command, error) { return d.Report(ctx, "Idle", "", nil) }

// ParseCommand decodes a server answer into a command (nil for an empty body).
func ParseCommand(resp []byte) (*Command, error) {
	if len(bytes.TrimSpace(resp)) == 0 {
		return nil, nil
	}
	var env struct {
		CommandUUID string
		Command     map[string]any
	}
	if err := plist.Unmarshal(resp, &env); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	rt, _ := env.Command["RequestType"].(string)
	if env.CommandUUID == "" || rt == "" {
		return nil, errors.New("command without CommandUUID or RequestType")
	}
	return &Command{UUID: env.CommandUUID, RequestType: rt, Payload: env.Command}, nil
}

// Answerer produces the result keys for a command; nil means Acknowledged
// with no extra keys.
type Answerer func(c *Command) (status string, extra map[string]any)

// Drain connects until the server has nothing more to send, answering each
// command with answer (nil: the device's default Answer). It returns the
// commands it handled.
func (d *Device) Drain(ctx context.Context, answer Answerer) ([]*Command, error) {
	var done []*Command
	cmd, err := d.Idle(ctx)
	for err == nil && cmd != nil {
		done = append(done, cmd)
		if answer == nil {
			answer = d.Answer
		}
		status, extra := answer(cmd)
		cmd, err = d.Report(ctx, status, cmd.UUID, extra)
		if len(done) > 100_000 {
			return done, errors.New("drain: server never ran out of commands")
		}
	}
	return done, err
}

// DecodePlistMap decodes a server answer into a generic dictionary.
func DecodePlistMap(b []byte) (map[string]any, error) {
	var m map[string]any
	err := plist.Unmarshal(b, &m)
	return m, err
}
