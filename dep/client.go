package dep

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is Apple's device assignment service.
const DefaultBaseURL = "https://mdmenrollment.apple.com"

// ProtocolVersion is sent as X-Server-Protocol-Version.
const ProtocolVersion = "3"

// Error kinds a caller branches on (use errors.Is).
var (
	// ErrCursor: Apple refused the cursor (expired, invalid, missing); the
	// caller must start a full fetch.
	ErrCursor = errors.New("cursor refused")
	// ErrTokenRejected: the server token no longer works (expired, revoked,
	// terms not accepted); retrying cannot help until the admin acts.
	ErrTokenRejected = errors.New("server token rejected")
	// ErrThrottled: Apple asked to slow down and retries ran out.
	ErrThrottled = errors.New("throttled by Apple")
)

// APIError is a failed call to Apple's service.
type APIError struct {
	Endpoint   string
	Status     int
	Code       string // Apple's code (EXPIRED_CURSOR, ACCESS_DENIED...) or oauth_problem
	RetryAfter time.Duration
	kind       error
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("dep: %s: HTTP %d", e.Endpoint, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Unwrap lets errors.Is match ErrCursor, ErrTokenRejected or ErrThrottled.
func (e *APIError) Unwrap() error { return e.kind }

var codeRE = regexp.MustCompile(`[A-Z][A-Z0-9_]{3,}`)

// classify turns a non-2xx response into an *APIError.
func classify(endpoint string, status int, h http.Header, body []byte) *APIError {
	e := &APIError{Endpoint: endpoint, Status: status}
	text := strings.TrimSpace(string(body))
	if i := strings.Index(text, "oauth_problem="); i >= 0 {
		v, _ := url.ParseQuery(text[i:])
		e.Code = "oauth_problem=" + v.Get("oauth_problem")
	} else {
		var j struct {
			Code              string `json:"code"`
			Error             string `json:"error"`
			RetryAfterSeconds int    `json:"retry_after_seconds"`
		}
		if json.Unmarshal(body, &j) == nil {
			e.Code = j.Code
			if e.Code == "" {
				e.Code = j.Error
			}
			if j.RetryAfterSeconds > 0 {
				e.RetryAfter = time.Duration(j.RetryAfterSeconds) * time.Second
			}
		}
		if e.Code == "" {
			e.Code = codeRE.FindString(text)
		}
	}
	if ra := h.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	switch {
	case strings.Contains(e.Code, "CURSOR"):
		e.kind = ErrCursor
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || e.Code == "THROTTLED":
		e.kind = ErrThrottled
	case strings.HasPrefix(e.Code, "oauth_problem="), e.Code == "ACCESS_DENIED", e.Code == "T_C_NOT_SIGNED",
		e.Code == "FORBIDDEN", e.Code == "TOKEN_EXPIRED", e.Code == "TOKEN_REVOKED", status == http.StatusForbidden:
		e.kind = ErrTokenRejected
	}
	return e
}

// Clock is the time source; tests inject a manual one.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Client calls Apple's device assignment service for one server token.
// It is safe for concurrent use.
type Client struct {
	base       *url.URL
	hc         *http.Client
	creds      Credentials
	clock      Clock
	log        *slog.Logger
	metrics    Metrics
	maxRetries int
	maxWait    time.Duration

	mu      sync.Mutex
	session string
}

// ClientOption tunes a Client.
type ClientOption func(*Client)

// WithBaseURL points the client elsewhere than Apple (tests, proxies).
func WithBaseURL(u string) ClientOption {
	return func(c *Client) {
		if p, err := url.Parse(strings.TrimRight(u, "/")); err == nil {
			c.base = p
		}
	}
}

// WithHTTPClient sets the HTTP client.
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// WithClock sets the clock used to wait out throttling.
func WithClock(clk Clock) ClientOption { return func(c *Client) { c.clock = clk } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) ClientOption { return func(c *Client) { c.log = l } }

// WithMetrics sets the failure counters.
func WithMetrics(m Metrics) ClientOption { return func(c *Client) { c.metrics = m } }

// WithRetries bounds throttling retries per call and the longest single
// wait; a longer Retry-After fails the call with ErrThrottled at once.
func WithRetries(n int, maxWait time.Duration) ClientOption {
	return func(c *Client) { c.maxRetries, c.maxWait = n, maxWait }
}

// NewClient returns a client for creds.
func NewClient(creds Credentials, opts ...ClientOption) (*Client, error) {
	if creds.ConsumerKey == "" || creds.AccessToken == "" {
		return nil, errors.New("dep: client needs credentials")
	}
	base, _ := url.Parse(DefaultBaseURL)
	c := &Client{base: base, hc: &http.Client{Timeout: 60 * time.Second}, creds: creds, clock: realClock{},
		log: slog.Default(), metrics: NopMetrics{}, maxRetries: 4, maxWait: 5 * time.Minute}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil || c.clock == nil || c.log == nil || c.metrics == nil {
		return nil, errors.New("dep: nil client dependency")
	}
	return c, nil
}

func percentEncode(s string) string {
	// RFC 5849 3.6: unreserved characters stay, everything else %XX.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.' || ch == '_' || ch == '~' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

// OAuthSignature computes the HMAC-SHA1 signature of an OAuth 1.0a request
// (exported for the fake server, which verifies it the same way Apple does).
func OAuthSignature(method, rawURL string, params map[string]string, consumerSecret, tokenSecret string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "oauth_signature" && k != "realm" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = percentEncode(k) + "=" + percentEncode(params[k])
	}
	base := method + "&" + percentEncode(rawURL) + "&" + percentEncode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(percentEncode(consumerSecret)+"&"+percentEncode(tokenSecret)))
	mac.Write([]byte(base))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (c *Client) oauthHeader(method, rawURL string) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	p := map[string]string{
		"oauth_consumer_key":     c.creds.ConsumerKey,
		"oauth_token":            c.creds.AccessToken,
		"oauth_signature_method": "HMAC-SHA1",
		"oauth_timestamp":        strconv.FormatInt(c.clock.Now().Unix(), 10),
		"oauth_nonce":            hex.EncodeToString(nonce),
		"oauth_version":          "1.0",
	}
	p["oauth_signature"] = OAuthSignature(method, rawURL, p, c.creds.ConsumerSecret, c.creds.AccessSecret)
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{`realm="ADM"`}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf(`%s="%s"`, k, percentEncode(p[k])))
	}
	return "OAuth " + strings.Join(parts, ", ")
}

// newSession gets an auth session token with a signed OAuth request.
func (c *Client) newSession(ctx context.Context) (string, error) {
	u := c.base.JoinPath("session").String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", c.oauthHeader(http.MethodGet, u))
	req.Header.Set("X-Server-Protocol-Version", ProtocolVersion)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("dep: session: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		e := classify("session", resp.StatusCode, resp.Header, body)
		if e.kind == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest) {
			e.kind = ErrTokenRejected // the session endpoint only fails that way on bad OAuth
		}
		return "", e
	}
	var out struct {
		Token string `json:"auth_session_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("dep: session: no auth_session_token in answer")
	}
	return out.Token, nil
}

func (c *Client) currentSession(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != "" && c.session != stale {
		return c.session, nil
	}
	s, err := c.newSession(ctx)
	if err != nil {
		return "", err
	}
	c.session = s
	return s, nil
}

// do sends one JSON call, renewing the session on 401 and waiting out
// throttling, and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return err
		}
	}
	endpoint := strings.TrimPrefix(path, "/")
	stale := ""
	renewed := false
	for attempt := 0; ; attempt++ {
		session, err := c.currentSession(ctx, stale)
		if err != nil {
			c.failed(endpoint, err)
			return err
		}
		u := c.base.JoinPath(path)
		u.RawQuery = query.Encode()
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("X-ADM-Auth-Session", session)
		req.Header.Set("X-Server-Protocol-Version", ProtocolVersion)
		req.Header.Set("Content-Type", "application/json;charset=UTF8")
		req.Header.Set("Accept", "application/json")
		resp, err := c.hc.Do(req)
		if err != nil {
			err = fmt.Errorf("dep: %s: %w", endpoint, err)
			c.failed(endpoint, err)
			return err
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if s := resp.Header.Get("X-ADM-Auth-Session"); s != "" {
			c.mu.Lock()
			if c.session == session {
				c.session = s // Apple may roll the session on any answer
			}
			c.mu.Unlock()
		}
		if rerr != nil {
			err = fmt.Errorf("dep: %s: read answer: %w", endpoint, rerr)
			c.failed(endpoint, err)
			return err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				err = fmt.Errorf("dep: %s: decode answer: %w", endpoint, err)
				c.failed(endpoint, err)
				return err
			}
			return nil
		}
		apiErr := classify(endpoint, resp.StatusCode, resp.Header, body)
		if resp.StatusCode == http.StatusUnauthorized && apiErr.kind == nil && !renewed {
			stale, renewed = session, true // session expired: one new session, then give up
			c.log.InfoContext(ctx, "dep: session expired, renewing", "endpoint", endpoint)
			continue
		}
		if errors.Is(apiErr, ErrThrottled) {
			c.metrics.Throttled(endpoint)
			wait := apiErr.RetryAfter
			if wait <= 0 {
				wait = time.Duration(1<<attempt) * time.Second
			}
			if attempt < c.maxRetries && wait <= c.maxWait {
				c.log.WarnContext(ctx, "dep: throttled, waiting", "endpoint", endpoint, "status", resp.StatusCode, "wait", wait)
				if err := c.clock.Sleep(ctx, wait); err != nil {
					return fmt.Errorf("dep: %s: %w", endpoint, err)
				}
				continue
			}
			if apiErr.RetryAfter <= 0 {
				apiErr.RetryAfter = wait
			}
		}
		c.failed(endpoint, apiErr)
		return apiErr
	}
}

func (c *Client) failed(endpoint string, err error) {
	code := "error"
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		code = apiErr.Code
		if code == "" {
			code = strconv.Itoa(apiErr.Status)
		}
	}
	c.metrics.APIError(endpoint, code)
	c.log.Warn("dep: call failed", "endpoint", endpoint, "err", err)
}

// Account is the MDM server's account as Apple describes it.
type Account struct {
	ServerName    string `json:"server_name"`
	ServerUUID    string `json:"server_uuid"`
	AdminID       string `json:"admin_id"`
	FacilitatorID string `json:"facilitator_id,omitempty"`
	OrgName       string `json:"org_name"`
	OrgEmail      string `json:"org_email"`
	OrgPhone      string `json:"org_phone"`
	OrgAddress    string `json:"org_address"`
	OrgType       string `json:"org_type,omitempty"`
	OrgVersion    string `json:"org_version,omitempty"`
	OrgID         string `json:"org_id,omitempty"`
	OrgIDHash     string `json:"org_id_hash,omitempty"`
	URLs          []any  `json:"urls,omitempty"`
}

// Account fetches the server's account details.
func (c *Client) Account(ctx context.Context) (*Account, error) {
	var a Account
	return &a, c.do(ctx, http.MethodGet, "/account", nil, nil, &a)
}

// Device is a device as Apple's fetch, sync and details calls return it.
type Device struct {
	SerialNumber       string `json:"serial_number"`
	Model              string `json:"model,omitempty"`
	Description        string `json:"description,omitempty"`
	Color              string `json:"color,omitempty"`
	AssetTag           string `json:"asset_tag,omitempty"`
	OS                 string `json:"os,omitempty"`
	DeviceFamily       string `json:"device_family,omitempty"`
	ProfileStatus      string `json:"profile_status,omitempty"`
	ProfileUUID        string `json:"profile_uuid,omitempty"`
	ProfileAssignTime  string `json:"profile_assign_time,omitempty"`
	ProfilePushTime    string `json:"profile_push_time,omitempty"`
	DeviceAssignedDate string `json:"device_assigned_date,omitempty"`
	DeviceAssignedBy   string `json:"device_assigned_by,omitempty"`
	OpType             string `json:"op_type,omitempty"`
	OpDate             string `json:"op_date,omitempty"`
	ResponseStatus     string `json:"response_status,omitempty"`
}

// DevicePage is one page of fetch or sync.
type DevicePage struct {
	Devices      []Device `json:"devices"`
	Cursor       string   `json:"cursor"`
	MoreToFollow bool     `json:"more_to_follow"`
	FetchedUntil string   `json:"fetched_until,omitempty"`
}

type cursorRequest struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// FetchDevices returns a page of every device assigned to the server
// (cursor "" starts over).
func (c *Client) FetchDevices(ctx context.Context, cursor string, limit int) (*DevicePage, error) {
	var p DevicePage
	return &p, c.do(ctx, http.MethodPost, "/server/devices", nil, cursorRequest{cursor, limit}, &p)
}

// SyncDevices returns the changes since cursor.
func (c *Client) SyncDevices(ctx context.Context, cursor string, limit int) (*DevicePage, error) {
	var p DevicePage
	return &p, c.do(ctx, http.MethodPost, "/devices/sync", nil, cursorRequest{cursor, limit}, &p)
}

type serialsRequest struct {
	ProfileUUID string   `json:"profile_uuid,omitempty"`
	Devices     []string `json:"devices"`
}

// DeviceDetails returns Apple's record of each serial.
func (c *Client) DeviceDetails(ctx context.Context, serials []string) (map[string]Device, error) {
	var out struct {
		Devices map[string]Device `json:"devices"`
	}
	err := c.do(ctx, http.MethodPost, "/devices", nil, serialsRequest{Devices: serials}, &out)
	return out.Devices, err
}

// Profile is Apple's ADE profile JSON.
type Profile struct {
	ProfileName           string   `json:"profile_name"`
	URL                   string   `json:"url"`
	AllowPairing          bool     `json:"allow_pairing"`
	IsSupervised          bool     `json:"is_supervised"`
	IsMultiUser           bool     `json:"is_multi_user"`
	IsMandatory           bool     `json:"is_mandatory"`
	AwaitDeviceConfigured bool     `json:"await_device_configured"`
	IsMDMRemovable        bool     `json:"is_mdm_removable"`
	SupportPhoneNumber    string   `json:"support_phone_number,omitempty"`
	SupportEmailAddress   string   `json:"support_email_address,omitempty"`
	Department            string   `json:"department,omitempty"`
	OrgMagic              string   `json:"org_magic,omitempty"`
	AnchorCerts           []string `json:"anchor_certs,omitempty"`
	SupervisingHostCerts  []string `json:"supervising_host_certs,omitempty"`
	SkipSetupItems        []string `json:"skip_setup_items"`
	Language              string   `json:"language,omitempty"`
	Region                string   `json:"region,omitempty"`
	ConfigurationWebURL   string   `json:"configuration_web_url,omitempty"`
	Devices               []string `json:"devices,omitempty"`
	ProfileUUID           string   `json:"profile_uuid,omitempty"` // in GetProfile answers
}

// DefineProfile creates a profile at Apple and returns its UUID and the
// per-serial result of any devices listed in p.
func (c *Client) DefineProfile(ctx context.Context, p *Profile) (string, map[string]string, error) {
	var out struct {
		ProfileUUID string            `json:"profile_uuid"`
		Devices     map[string]string `json:"devices"`
	}
	if err := c.do(ctx, http.MethodPost, "/profile", nil, p, &out); err != nil {
		return "", nil, err
	}
	if out.ProfileUUID == "" {
		return "", nil, errors.New("dep: profile: no profile_uuid in answer")
	}
	return out.ProfileUUID, out.Devices, nil
}

// GetProfile fetches a profile by UUID.
func (c *Client) GetProfile(ctx context.Context, uuid string) (*Profile, error) {
	var p Profile
	return &p, c.do(ctx, http.MethodGet, "/profile", url.Values{"profile_uuid": {uuid}}, nil, &p)
}

// MaxBatch is the most serials Orchard sends in one assignment call.
const MaxBatch = 1000

// AssignProfile assigns a profile to serials (at most MaxBatch) and returns
// Apple's per-serial answer (SUCCESS, NOT_ACCESSIBLE, FAILED).
func (c *Client) AssignProfile(ctx context.Context, uuid string, serials []string) (map[string]string, error) {
	return c.serialsCall(ctx, http.MethodPut, "/profile/devices", serialsRequest{uuid, serials})
}

// RemoveProfile unassigns the profile of serials.
func (c *Client) RemoveProfile(ctx context.Context, serials []string) (map[string]string, error) {
	return c.serialsCall(ctx, http.MethodDelete, "/profile/devices", serialsRequest{Devices: serials})
}

// Disown releases serials from the organisation. Irreversible.
func (c *Client) Disown(ctx context.Context, serials []string) (map[string]string, error) {
	return c.serialsCall(ctx, http.MethodPost, "/devices/disown", serialsRequest{Devices: serials})
}

func (c *Client) serialsCall(ctx context.Context, method, path string, req serialsRequest) (map[string]string, error) {
	if len(req.Devices) == 0 {
		return map[string]string{}, nil
	}
	if len(req.Devices) > MaxBatch {
		return nil, fmt.Errorf("dep: %s: %d serials, at most %d per call", path, len(req.Devices), MaxBatch)
	}
	var out struct {
		Devices map[string]string `json:"devices"`
	}
	err := c.do(ctx, method, path, nil, req, &out)
	return out.Devices, err
}
