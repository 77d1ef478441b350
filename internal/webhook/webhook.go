// Package webhook tells other systems what happened in Orchard: events in
// the envelope MicroMDM and NanoMDM webhooks use (so their consumers work
// unchanged) plus Orchard's own topics, written to a durable outbox in
// storage before the change they report is answered, and posted to each
// endpoint in order, signed, retried with backoff and dead-lettered.
//
// Journal writes the outbox (on the device path: one group-committed
// append, only when an enabled endpoint wants the topic); Dispatcher
// delivers it (one replica at a time); Handler is the admin API.
package webhook

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrInvalid: an endpoint's settings were refused (a 400).
var ErrInvalid = errors.New("invalid webhook")

// Envelope is one event as posted. CheckinEvent and AcknowledgeEvent are
// the MicroMDM/NanoMDM payloads; OrchardEvent carries Orchard's own topics.
type Envelope struct {
	Topic            string            `json:"topic"`
	EventID          string            `json:"event_id"`
	CreatedAt        time.Time         `json:"created_at"`
	CheckinEvent     *CheckinEvent     `json:"checkin_event,omitempty"`
	AcknowledgeEvent *AcknowledgeEvent `json:"acknowledge_event,omitempty"`
	OrchardEvent     any               `json:"orchard_event,omitempty"`
}

// CheckinEvent is a check-in message (topic mdm.<MessageType>).
type CheckinEvent struct {
	UDID         string            `json:"udid,omitempty"`
	EnrollmentID string            `json:"enrollment_id,omitempty"`
	RawPayload   []byte            `json:"raw_payload"` // base64 of the plist, secrets cut (see Redacted)
	URLParams    map[string]string `json:"url_params,omitempty"`
}

// AcknowledgeEvent is a command report or Idle (topic mdm.Connect).
type AcknowledgeEvent struct {
	UDID         string            `json:"udid,omitempty"`
	EnrollmentID string            `json:"enrollment_id,omitempty"`
	Status       string            `json:"status"`
	CommandUUID  string            `json:"command_uuid,omitempty"`
	RawPayload   []byte            `json:"raw_payload"`
	URLParams    map[string]string `json:"url_params,omitempty"`
}

// Topics of check-ins and reports, as MicroMDM and NanoMDM name them.
const (
	TopicAuthenticate          = "mdm.Authenticate"
	TopicTokenUpdate           = "mdm.TokenUpdate"
	TopicCheckOut              = "mdm.CheckOut"
	TopicConnect               = "mdm.Connect"
	TopicUserAuthenticate      = "mdm.UserAuthenticate"
	TopicSetBootstrapToken     = "mdm.SetBootstrapToken"
	TopicGetBootstrapToken     = "mdm.GetBootstrapToken"
	TopicDeclarativeManagement = "mdm.DeclarativeManagement"
	TopicGetToken              = "mdm.GetToken"
)

// Orchard's own topics.
const (
	TopicEnrollmentRefused   = "orchard.enrollment.refused"
	TopicProfileStateChanged = "orchard.profile.state_changed"
	TopicDeviceReleased      = "orchard.device.released"
	TopicRenewalFailed       = "orchard.renewal.failed"
)

// Topics is every topic Orchard sends.
var Topics = []string{
	TopicAuthenticate, TopicTokenUpdate, TopicCheckOut, TopicConnect, TopicUserAuthenticate,
	TopicSetBootstrapToken, TopicGetBootstrapToken, TopicDeclarativeManagement, TopicGetToken,
	TopicEnrollmentRefused, TopicProfileStateChanged, TopicDeviceReleased, TopicRenewalFailed,
}

// Secrets are the plist keys of device secrets cut from raw payloads
// unless an endpoint names them in include_secrets.
var Secrets = []string{"BootstrapToken", "Token", "PushMagic", "UnlockToken", "DigestResponse"}

// matches reports whether a topic filter takes a topic: "*" takes all,
// "x.*" every topic under x., anything else only itself.
func matches(filters []string, topic string) bool {
	for _, f := range filters {
		if f == "*" || f == topic {
			return true
		}
		if p, ok := strings.CutSuffix(f, "*"); ok && strings.HasSuffix(p, ".") && strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// maxTopics bounds an endpoint's filter list.
const maxTopics = 64

// checkTopics refuses filters that could never match, so a typo does not
// silently drop events.
func checkTopics(filters []string) error {
	if len(filters) == 0 {
		return fmt.Errorf("%w: topics: name at least one (\"*\" for all, \"mdm.*\", \"orchard.*\" or exact topics)", ErrInvalid)
	}
	if len(filters) > maxTopics {
		return fmt.Errorf("%w: topics: at most %d", ErrInvalid, maxTopics)
	}
	for _, f := range filters {
		if f == "*" || slices.Contains(Topics, f) {
			continue
		}
		if p, ok := strings.CutSuffix(f, ".*"); ok && slices.ContainsFunc(Topics, func(t string) bool { return strings.HasPrefix(t, p+".") }) {
			continue
		}
		return fmt.Errorf("%w: topic %.80q is not one Orchard sends (see docs/webhooks.md)", ErrInvalid, f)
	}
	return nil
}

func checkSecretNames(names []string) error {
	for _, n := range names {
		if !slices.Contains(Secrets, n) {
			return fmt.Errorf("%w: include_secrets: %.40q is not one of %s", ErrInvalid, n, strings.Join(Secrets, ", "))
		}
	}
	return nil
}

// Verify reports whether sig is the X-Hmac-Signature of body under secret
// (in constant time), as a receiver checks it.
func Verify(secret, body []byte, sig string) bool {
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	want, _ := base64.StdEncoding.DecodeString(Sign(secret, body))
	return hmac.Equal(got, want)
}
