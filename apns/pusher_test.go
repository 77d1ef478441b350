package apns_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/apns/apnstest"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	fake   *apnstest.Server
	cert   *apnstest.Cert
	pusher *apns.Pusher
	logs   *syncBuffer
}

// newEnv starts a fake APNs trusting a fresh push certificate and a Pusher
// pointed at it with quick retries.
func newEnv(t testing.TB, opts ...apns.Option) *env {
	t.Helper()
	e := &env{cert: pushCert(t), logs: &syncBuffer{}}
	e.fake = apnstest.NewServer(e.cert.Leaf)
	t.Cleanup(e.fake.Close)
	base := []apns.Option{
		apns.WithBaseURL(e.fake.URL()),
		apns.WithRootCAs(e.fake.RootCAs()),
		apns.WithRetry(3, time.Millisecond, 4*time.Millisecond),
		// Long enough that a loaded machine never times a push out; the
		// tests of the timeout set their own.
		apns.WithTimeout(30 * time.Second),
		apns.WithLogger(slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	p, err := apns.NewPusher(e.cert.TLS, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	e.pusher = p
	return e
}

func token(i int) []byte {
	t := make([]byte, 32)
	copy(t, fmt.Sprintf("device-%08d", i))
	return t
}

func notes(n int) []apns.Notification {
	ns := make([]apns.Notification, n)
	for i := range ns {
		ns[i] = apns.Notification{Token: token(i), PushMagic: fmt.Sprintf("magic-%d-7F3A", i), ID: fmt.Sprintf("dev-%d", i)}
	}
	return ns
}

func TestPushSuccess(t *testing.T) {
	e := newEnv(t)
	ns := notes(5)
	before := time.Now()
	res := e.pusher.Push(context.Background(), ns)
	if len(res) != len(ns) {
		t.Fatalf("%d results for %d notifications", len(res), len(ns))
	}
	for i, r := range res {
		if r.ID != ns[i].ID || !r.Sent || r.TokenInvalid || r.Status != 200 || r.Reason != "" || r.Attempts != 1 || r.APNsID == "" || r.At.Before(before) {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	pushes := e.fake.Pushes()
	if len(pushes) != len(ns) {
		t.Fatalf("fake saw %d pushes, want %d", len(pushes), len(ns))
	}
	byToken := map[string]apnstest.Push{}
	for _, p := range pushes {
		byToken[hex.EncodeToString(p.Token)] = p
	}
	for _, n := range ns {
		p, ok := byToken[hex.EncodeToString(n.Token)]
		if !ok {
			t.Fatalf("no push for %s", n.ID)
		}
		if p.Status != 200 || p.PushMagic != n.PushMagic || p.Topic != e.cert.Topic {
			t.Errorf("push %s = %+v", n.ID, p)
		}
		if got := p.Header.Get("apns-push-type"); got != "mdm" {
			t.Errorf("apns-push-type = %q", got)
		}
		if got := p.Header.Get("apns-priority"); got != "10" {
			t.Errorf("apns-priority = %q", got)
		}
		exp, err := strconv.ParseInt(p.Header.Get("apns-expiration"), 10, 64)
		if want := before.Add(apns.DefaultExpiration).Unix(); err != nil || exp < want-1 || exp > want+60 {
			t.Errorf("apns-expiration = %d, want about %d", exp, want)
		}
	}
	if e.pusher.Topic() != e.cert.Topic {
		t.Errorf("Topic() = %q", e.pusher.Topic())
	}
}

func TestPushAnswers(t *testing.T) {
	slow := apnstest.Slow(time.Minute) // until the client gives up
	tests := []struct {
		name     string
		script   []apnstest.Answer
		sent     bool
		invalid  bool
		attempts int
		status   int
		reason   string
	}{
		{"410 Unregistered", []apnstest.Answer{apnstest.Unregistered}, false, true, 1, 410, "Unregistered"},
		{"410 without reason", []apnstest.Answer{{Status: 410, Reason: "Whatever"}}, false, true, 1, 410, "Whatever"},
		{"BadDeviceToken", []apnstest.Answer{apnstest.BadDeviceToken}, false, true, 1, 400, "BadDeviceToken"},
		{"DeviceTokenNotForTopic", []apnstest.Answer{{Status: 400, Reason: "DeviceTokenNotForTopic"}}, false, true, 1, 400, "DeviceTokenNotForTopic"},
		{"429 then OK", []apnstest.Answer{apnstest.TooManyRequests}, true, false, 2, 200, ""},
		{"500 and 503 then OK", []apnstest.Answer{apnstest.InternalServerError, apnstest.ServiceUnavailable}, true, false, 3, 200, ""},
		{"500 forever gives up", []apnstest.Answer{apnstest.InternalServerError, apnstest.InternalServerError, apnstest.InternalServerError, apnstest.InternalServerError}, false, false, 3, 500, "InternalServerError"},
		{"429 forever gives up", []apnstest.Answer{apnstest.TooManyRequests, apnstest.TooManyRequests, apnstest.TooManyRequests, apnstest.TooManyRequests}, false, false, 3, 429, "TooManyRequests"},
		{"other 400 not retried", []apnstest.Answer{{Status: 400, Reason: "BadTopic"}}, false, false, 1, 400, "BadTopic"},
		{"403 not retried", []apnstest.Answer{{Status: 403, Reason: "BadCertificateEnvironment"}}, false, false, 1, 403, "BadCertificateEnvironment"},
		{"slow once then OK", []apnstest.Answer{slow}, true, false, 2, 200, ""},
		{"slow always hits the timeout", []apnstest.Answer{slow, slow, slow}, false, false, 3, 0, "timeout after 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Only the scripts with a slow answer need a short timeout; the
			// others keep the long one, so a loaded machine cannot turn
			// their answers into timeouts (the bystander shares it).
			timeout := 30 * time.Second
			if slices.Contains(tc.script, slow) {
				timeout = time.Second
			}
			e := newEnv(t, apns.WithTimeout(timeout))
			ns := notes(2) // the second device is untouched by the script
			e.fake.Script(ns[0].Token, tc.script...)
			res := e.pusher.Push(context.Background(), ns)
			r := res[0]
			if r.Sent != tc.sent || r.TokenInvalid != tc.invalid || r.Attempts != tc.attempts || r.Status != tc.status || r.Reason != tc.reason {
				t.Errorf("result = %+v\nwant sent=%v invalid=%v attempts=%d status=%d reason=%q", r, tc.sent, tc.invalid, tc.attempts, tc.status, tc.reason)
			}
			if !res[1].Sent || res[1].Attempts != 1 {
				t.Errorf("bystander result = %+v", res[1])
			}
			var seen int
			for _, p := range e.fake.Pushes() {
				if bytes.Equal(p.Token, ns[0].Token) {
					seen++
				}
			}
			if seen != tc.attempts {
				t.Errorf("fake saw %d requests, want %d", seen, tc.attempts)
			}
		})
	}
}

// A push retried after 500s is the same notification to APNs: every
// attempt carries one apns-id, and the result names it.
func TestPushRetriesKeepAPNsID(t *testing.T) {
	e := newEnv(t)
	ns := notes(2)
	e.fake.Script(ns[0].Token, apnstest.InternalServerError, apnstest.InternalServerError)
	res := e.pusher.Push(context.Background(), ns)
	if !res[0].Sent || res[0].Attempts != 3 {
		t.Fatalf("result = %+v", res[0])
	}
	ids := map[string][]string{}
	for _, p := range e.fake.Pushes() {
		ids[string(p.Token)] = append(ids[string(p.Token)], p.Header.Get("apns-id"))
	}
	got := ids[string(ns[0].Token)]
	if len(got) != 3 || got[0] == "" || got[1] != got[0] || got[2] != got[0] {
		t.Fatalf("apns-id per attempt = %q, want one id three times", got)
	}
	if res[0].APNsID != got[0] {
		t.Errorf("result apns-id %q, sent %q", res[0].APNsID, got[0])
	}
	if other := ids[string(ns[1].Token)]; len(other) != 1 || other[0] == got[0] {
		t.Errorf("the other notification's apns-id = %q, want its own", other)
	}
}

func TestPushRefusedByFake(t *testing.T) {
	e := newEnv(t)
	stranger := pushCert(t)
	other, err := apns.NewPusher(stranger.TLS, apns.WithBaseURL(e.fake.URL()), apns.WithRootCAs(e.fake.RootCAs()),
		apns.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	tests := []struct {
		name   string
		pusher *apns.Pusher
		topic  string
		status int
		reason string
	}{
		{"topic not the certificate's", e.pusher, "com.apple.mgmt.External.someone-else", 400, "TopicDisallowed"},
		{"untrusted client certificate", other, "", 403, "BadCertificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := notes(1)
			n[0].Topic = tc.topic
			r := tc.pusher.Push(context.Background(), n)[0]
			if r.Sent || r.TokenInvalid || r.Status != tc.status || r.Reason != tc.reason || r.Attempts != 1 {
				t.Errorf("result = %+v, want %d %s", r, tc.status, tc.reason)
			}
		})
	}
}

func TestPushBadNotifications(t *testing.T) {
	e := newEnv(t)
	ns := []apns.Notification{
		{ID: "no-token", PushMagic: "m"},
		{ID: "no-magic", Token: token(1)},
	}
	res := e.pusher.Push(context.Background(), ns)
	for i, want := range []string{"empty device token", "empty push magic"} {
		if res[i].Sent || res[i].Reason != want || res[i].Attempts != 0 || res[i].ID != ns[i].ID {
			t.Errorf("result %d = %+v, want reason %q", i, res[i], want)
		}
	}
	if n := len(e.fake.Pushes()); n != 0 {
		t.Errorf("fake saw %d pushes", n)
	}
}

func TestPushNoTopic(t *testing.T) {
	e := newEnv(t)
	noUID := pushCert(t, apnstest.WithTopic(""))
	e.fake.Trust(noUID.Leaf)
	p, err := apns.NewPusher(noUID.TLS, apns.WithBaseURL(e.fake.URL()), apns.WithRootCAs(e.fake.RootCAs()),
		apns.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := p.Push(context.Background(), notes(1))[0]
	if r.Sent || !strings.HasPrefix(r.Reason, "no topic") || r.Attempts != 0 {
		t.Errorf("result = %+v", r)
	}
}

func TestPushContextCanceled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range e.pusher.Push(ctx, notes(20)) {
		if r.Sent || r.Reason != context.Canceled.Error() {
			t.Errorf("result = %+v", r)
		}
	}
	if n := len(e.fake.Pushes()); n != 0 {
		t.Errorf("fake saw %d pushes after cancel", n)
	}
}

func TestPushCancelDuringBackoff(t *testing.T) {
	e := newEnv(t, apns.WithRetry(5, time.Hour, time.Hour))
	e.fake.SetDefault(apnstest.ServiceUnavailable)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := e.pusher.Push(ctx, notes(1))[0]
	if r.Sent || r.Attempts != 1 || r.Reason != context.DeadlineExceeded.Error() {
		t.Errorf("result = %+v", r)
	}
}

func TestPushConcurrencyAndOneConnection(t *testing.T) {
	// The fake allows apnstest.MaxConcurrentStreams (1,000) streams per
	// connection, as APNs does.
	tests := []struct {
		concurrency, n int
		delay          time.Duration
		maxConns       int
	}{
		{1, 5, 5 * time.Millisecond, 1},
		{4, 40, 10 * time.Millisecond, 1},
		{100, 1000, 10 * time.Millisecond, 1},
		// Beyond the 100 streams the client assumes before SETTINGS: the
		// push ahead of the burst keeps it on one connection.
		{400, 2000, 20 * time.Millisecond, 1},
		// Beyond one connection's limit: a second connection, and a third
		// while the second awaits its SETTINGS.
		{1200, 2400, 50 * time.Millisecond, 3},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.concurrency), func(t *testing.T) {
			e := newEnv(t, apns.WithConcurrency(tc.concurrency))
			e.fake.SetDefault(apnstest.Slow(tc.delay))
			for _, r := range e.pusher.Push(context.Background(), notes(tc.n)) {
				if !r.Sent || r.Attempts != 1 {
					t.Fatalf("result = %+v", r)
				}
			}
			if m := e.fake.MaxInFlight(); m > tc.concurrency || (tc.concurrency > 1 && m < 2) {
				t.Errorf("max in flight = %d, concurrency %d", m, tc.concurrency)
			}
			if c := e.fake.Connections(); c < 1 || c > tc.maxConns {
				t.Errorf("%d connections, want 1..%d", c, tc.maxConns)
			}
			// A second batch goes out without the lead push: the open
			// connection already knows the limit, so no more are dialed.
			before := e.fake.Connections()
			for _, r := range e.pusher.Push(context.Background(), notes(tc.n)) {
				if !r.Sent {
					t.Fatalf("second batch: result = %+v", r)
				}
			}
			if c := e.fake.Connections(); tc.maxConns == 1 && c != before {
				t.Errorf("second batch: %d connections, had %d", c, before)
			}
		})
	}
}

func TestPushNeverLogsSecrets(t *testing.T) {
	e := newEnv(t)
	ns := notes(3)
	e.fake.Script(ns[0].Token, apnstest.Unregistered)
	e.fake.Script(ns[1].Token, apnstest.InternalServerError, apnstest.InternalServerError, apnstest.InternalServerError)
	e.fake.Script(ns[2].Token, apnstest.Answer{Status: 400, Reason: "BadTopic"})
	rs := e.pusher.Push(context.Background(), ns)
	for i := range rs {
		if !bytes.Equal(rs[i].Token, ns[i].Token) {
			t.Errorf("result %d carries token %x, want %x", i, rs[i].Token, ns[i].Token)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "token invalid") || !strings.Contains(logs, "gave up") || !strings.Contains(logs, "push failed") {
		t.Fatalf("expected log lines missing:\n%s", logs)
	}
	// Per-device lines are debug only: a fleet-wide failure must not write
	// a warning per device; above debug there is one line per batch.
	if n := strings.Count(logs, "level=WARN") + strings.Count(logs, "level=INFO"); n != 1 ||
		!strings.Contains(logs, `level=INFO msg="apns push batch" total=3 sent=0 token_invalid=1 failed=2`) {
		t.Errorf("%d lines above debug, want only the batch summary:\n%s", n, logs)
	}
	for _, n := range ns {
		for _, secret := range []string{n.PushMagic, hex.EncodeToString(n.Token), hex.EncodeToString(n.Token[:8])} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains secret %q", secret)
			}
		}
	}
}

func TestRedactToken(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{nil, ""},
		{[]byte{1, 2}, "****"},
		{[]byte{0xab, 0xcd, 0xef, 0x01, 0x02, 0x03}, "abcdef01…"},
	} {
		if got := apns.RedactToken(tc.in); got != tc.want {
			t.Errorf("RedactToken(%x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNewPusherRefuses(t *testing.T) {
	c := pushCert(t)
	tests := []struct {
		name string
		cert tls.Certificate
		opt  apns.Option
	}{
		{"no certificate", tls.Certificate{}, apns.WithSandbox()},
		{"no key", tls.Certificate{Certificate: c.TLS.Certificate}, apns.WithSandbox()},
		{"nil option", c.TLS, nil},
		{"http base URL", c.TLS, apns.WithBaseURL("http://example.com")},
		{"zero concurrency", c.TLS, apns.WithConcurrency(0)},
		{"zero attempts", c.TLS, apns.WithRetry(0, time.Millisecond, time.Second)},
		{"max delay below base", c.TLS, apns.WithRetry(3, time.Second, time.Millisecond)},
		{"zero timeout", c.TLS, apns.WithTimeout(0)},
		{"negative expiration", c.TLS, apns.WithExpiration(-time.Hour)},
		{"nil roots", c.TLS, apns.WithRootCAs(nil)},
		{"nil logger", c.TLS, apns.WithLogger(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := apns.NewPusher(tc.cert, tc.opt); err == nil {
				p.Close()
				t.Error("accepted")
			}
		})
	}
	p, err := apns.NewPusher(c.TLS, apns.WithSandbox(), apns.WithExpiration(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
}

func TestPushExpirationOption(t *testing.T) {
	e := newEnv(t, apns.WithExpiration(time.Hour))
	before := time.Now()
	e.pusher.Push(context.Background(), notes(1))
	exp, _ := strconv.ParseInt(e.fake.Pushes()[0].Header.Get("apns-expiration"), 10, 64)
	if want := before.Add(time.Hour).Unix(); exp < want-1 || exp > want+60 {
		t.Errorf("apns-expiration = %d, want about %d", exp, want)
	}
}
