package apijson_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/storage"
)

func TestStatusMap(t *testing.T) {
	cases := []struct {
		err    error
		status int
		msg    string // "" when any
	}{
		{fmt.Errorf("device X: %w", storage.ErrNotFound), 404, "device X: not found"},
		{fmt.Errorf("wrap: %w", storage.ErrConflict), 409, ""},
		{storage.ErrLimit, 409, ""},
		{storage.ErrGone, 410, ""},
		{fmt.Errorf("%w: name is required", dep.ErrInvalid), 400, ""},
		{dep.ErrSyncRunning, 409, ""},
		{apns.ErrBadPassword, 400, ""},
		{apns.ErrTopicChanged, 409, ""},
		{&command.Invalid{Reason: "payload: PIN must be 6 digits"}, 400, "payload: PIN must be 6 digits"},
		{&dep.TooSoonError{Wait: 90 * time.Second}, 429, ""},
		{&dep.APIError{Endpoint: "devices", Status: 503}, 502, ""},
		{&http.MaxBytesError{Limit: 10}, 413, "body larger than 10 bytes"},
		{fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), 413, ""},
		{apijson.Errorf(422, "cannot run"), 422, "cannot run"},
		{apijson.Bad("first line\nsecond line"), 400, "first line"},
		{errors.New("open /secret/path: permission denied"), 500, "internal server error"},
	}
	for _, c := range cases {
		status, body := apijson.Status(c.err)
		msg, _ := body["error"].(string)
		if status != c.status || msg == "" || (c.msg != "" && msg != c.msg) || strings.ContainsAny(msg, "\r\n") {
			t.Errorf("%v: %d %q, want %d %q", c.err, status, msg, c.status, c.msg)
		}
	}
}

func TestFailWritesRetryAfterAndExtraFields(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	w := httptest.NewRecorder()
	apijson.Fail(w, httptest.NewRequest("POST", "/v1/x", nil), log, &dep.TooSoonError{Wait: 1500 * time.Millisecond})
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Errorf("too soon: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	w = httptest.NewRecorder()
	err := &apijson.Error{Status: 400, Msg: "no target", Fields: map[string]any{"targets": []string{"A"}, "error": "overridden"}}
	apijson.Fail(w, httptest.NewRequest("POST", "/v1/x", nil), log, err)
	var body struct {
		Error   string   `json:"error"`
		Targets []string `json:"targets"`
	}
	if json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error != "no target" || len(body.Targets) != 1 {
		t.Errorf("fields: %s", w.Body)
	}
}

func TestDecode(t *testing.T) {
	type req struct {
		N any `json:"n"`
	}
	cases := []struct {
		body     string
		optional bool
		status   int // 0: accepted
	}{
		{`{"n": 1}`, false, 0},
		{``, false, 400},
		{``, true, 0},
		{`{"n": 1} {}`, false, 400},
		{`{"n": 1}}`, false, 400},
		{`{"m": 1}`, false, 400},
		{`{"n": "` + strings.Repeat("x", 100) + `"}`, false, 413},
	}
	for _, c := range cases {
		var v req
		r := httptest.NewRequest("POST", "/v1/x", strings.NewReader(c.body))
		decode := apijson.Decode
		if c.optional {
			decode = apijson.DecodeOptional
		}
		err := decode(httptest.NewRecorder(), r, 64, &v)
		status := 0
		if err != nil {
			status, _ = apijson.Status(err)
		}
		if status != c.status {
			t.Errorf("%.20q optional=%v: status %d (%v), want %d", c.body, c.optional, status, err, c.status)
		}
		if err == nil && !c.optional {
			if _, ok := v.N.(json.Number); !ok {
				t.Errorf("%q: number decoded as %T, want json.Number", c.body, v.N)
			}
		}
	}
}
