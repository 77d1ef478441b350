package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// logEntry is one entry of GET /v1/commands as a client reads it.
type logEntry struct {
	UUID        string `json:"uuid"`
	RequestType string `json:"request_type"`
	Sender      string `json:"sender"`
	ChannelID   string `json:"channel_id"`
	Status      string `json:"status"`
	ErrorChain  []struct {
		ErrorCode int `json:"error_code"`
	} `json:"error_chain"`
}

// testCommandLog: GET /v1/commands lists every target of the fleet newest
// first with its sender (the admin's token, the bootstrap key, or nobody
// for Orchard's own inventory queries); each filter narrows it, pages
// follow next, bad filters are 400s, the CSV has the same rows, and the
// command's detail hides the passcode it carries.
func testCommandLog(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev1, dev2 := s.NewDevice(t), s.NewDevice(t)
	s.Enroll(t, dev1)
	s.Enroll(t, dev2)
	if code := s.API(t, "POST", "/v1/admins", map[string]any{"username": "hana", "role": "helpdesk", "password": "hana-long-password"}, nil); code != http.StatusCreated {
		t.Fatalf("create admin = %d", code)
	}
	var tok struct{ ID, Token string }
	if code := s.API(t, "POST", "/v1/admins/hana/tokens", map[string]any{}, &tok); code != http.StatusCreated {
		t.Fatalf("token = %d", code)
	}
	as := func(method, path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	if code, body := as("POST", "/v1/devices/"+dev1.UDID+"/actions/lock", map[string]any{"message": "Call IT"}); code != http.StatusCreated {
		t.Fatalf("helpdesk lock = %d %s", code, body)
	}
	var sent struct {
		UUID string `json:"command_uuid"`
	}
	if code := s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{dev1.UDID, dev2.UDID}, "request_type": "DeviceLock",
		"payload": map[string]any{"Message": "Lost", "PIN": "135790"}}, &sent); code != http.StatusCreated {
		t.Fatalf("bulk lock = %d", code)
	}
	// dev1 answers hana's lock with an error and is handed the bulk lock.
	lock, err := dev1.Idle(ctx)
	if err != nil || lock == nil || lock.RequestType != "DeviceLock" {
		t.Fatalf("dev1 got %+v, %v", lock, err)
	}
	chain := []any{map[string]any{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "USEnglishDescription": "Passcode required"}}
	if _, err := dev1.Report(ctx, "Error", lock.UUID, map[string]any{"ErrorChain": chain}); err != nil {
		t.Fatal(err)
	}

	list := func(query string) ([]logEntry, string) {
		t.Helper()
		var page struct {
			Commands []logEntry `json:"commands"`
			Next     string     `json:"next"`
		}
		if code := s.API(t, "GET", "/v1/commands?"+query, nil, &page); code != http.StatusOK {
			t.Fatalf("GET /v1/commands?%s = %d", query, code)
		}
		return page.Commands, page.Next
	}
	all, next := list("")
	if next != "" || len(all) < 4 {
		t.Fatalf("log = %+v (next %q)", all, next)
	}
	// Newest first: the bulk lock (dev2's target after dev1's), then hana's.
	top := all[:3]
	if top[0].UUID != sent.UUID || top[0].ChannelID != dev2.UDID || top[1].UUID != sent.UUID || top[1].ChannelID != dev1.UDID ||
		top[0].Sender != "bootstrap" || top[0].Status != "Queued" {
		t.Fatalf("newest entries = %+v", top)
	}
	if h := top[2]; h.UUID != lock.UUID || h.Sender != "hana/token:"+tok.ID || h.Status != "Error" ||
		len(h.ErrorChain) != 1 || h.ErrorChain[0].ErrorCode != 12021 {
		t.Fatalf("hana's lock = %+v", h)
	}
	for _, e := range all[3:] {
		if e.Sender != "" || e.RequestType == "DeviceLock" {
			t.Errorf("enrollment query %+v: want Orchard's own (no sender)", e)
		}
	}

	for _, c := range []struct {
		query string
		want  []string // uuid/channel
	}{
		{"sender=hana", []string{lock.UUID + "/" + dev1.UDID}},
		{"sender=bootstrap&status=queued", []string{sent.UUID + "/" + dev2.UDID, sent.UUID + "/" + dev1.UDID}},
		{"request_type=DeviceLock&status=Error", []string{lock.UUID + "/" + dev1.UDID}},
		{"request_type=EraseDevice", nil},
		{"until=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), nil},
		{"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), nil},
	} {
		got, next := list(c.query)
		var ids []string
		for _, e := range got {
			ids = append(ids, e.UUID+"/"+e.ChannelID)
		}
		if strings.Join(ids, " ") != strings.Join(c.want, " ") || next != "" {
			t.Errorf("?%s = %v (next %q), want %v", c.query, ids, next, c.want)
		}
	}

	// A duration is that long ago.
	if recent, _ := list("since=1h"); len(recent) != len(all) {
		t.Errorf("since=1h: %d entries, want all %d", len(recent), len(all))
	}
	if old, _ := list("until=1h"); len(old) != 0 {
		t.Errorf("until=1h: %d entries, want none", len(old))
	}

	// Pages of one follow next through the whole log.
	var paged []string
	for q, n := "limit=1", 0; ; n++ {
		if n > len(all) {
			t.Fatalf("paging does not end after %d pages", n)
		}
		page, next := list(q)
		for _, e := range page {
			paged = append(paged, e.UUID+"/"+e.ChannelID)
		}
		if next == "" {
			break
		}
		q = "limit=1&before=" + next
	}
	if len(paged) != len(all) || paged[0] != sent.UUID+"/"+dev2.UDID {
		t.Fatalf("paged = %v, want the %d entries of the log", paged, len(all))
	}

	for _, q := range []string{"status=Sent", "since=yesterday", "until=-1h", "limit=0", "limit=1001", "before=abc", "before=0",
		"request_type=" + strings.Repeat("x", 300), "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"} {
		var e struct{ Error string }
		if code := s.API(t, "GET", "/v1/commands?"+q, nil, &e); code != http.StatusBadRequest || e.Error == "" {
			t.Errorf("?%s = %d %q, want 400 with a reason", q, code, e.Error)
		}
	}
	// Helpdesk reads the log (Read), with its own token.
	if code, _ := as("GET", "/v1/commands?sender=hana", nil); code != http.StatusOK {
		t.Errorf("helpdesk GET /v1/commands = %d", code)
	}

	rows, err := csv.NewReader(bytes.NewReader(s.Get(t, "/v1/commands.csv?request_type=DeviceLock"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][1] != "command_uuid" || rows[1][1] != sent.UUID || rows[1][4] != dev2.UDID ||
		rows[3][3] != "hana/token:"+tok.ID || rows[3][5] != "Error" || !strings.HasPrefix(rows[3][8], "12021 MCMDMErrorDomain") {
		t.Fatalf("csv = %q", rows)
	}

	// The detail: sender and request, the PIN hidden.
	raw := s.Get(t, "/v1/commands/"+sent.UUID)
	if bytes.Contains(raw, []byte("135790")) {
		t.Fatalf("command detail shows the PIN: %s", raw)
	}
	var detail struct {
		Sender  string         `json:"sender"`
		Command map[string]any `json:"command"`
	}
	if err := json.Unmarshal(raw, &detail); err != nil {
		t.Fatal(err)
	}
	if detail.Sender != "bootstrap" || detail.Command["RequestType"] != "DeviceLock" || detail.Command["Message"] != "Lost" ||
		detail.Command["PIN"] != "(hidden)" {
		t.Fatalf("detail = %+v", detail)
	}
}
