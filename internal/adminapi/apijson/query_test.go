package apijson_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
)

func TestTimeRange(t *testing.T) {
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query        string
		since, until time.Time
		ago          time.Duration // since is about this long before now
		bad          string
	}{
		{query: ""},
		{query: "since=2026-11-01T08:00:00Z", since: at},
		{query: "until=2026-11-01T08:00:00Z", until: at},
		{query: "since=24h", ago: 24 * time.Hour},
		{query: "since=yesterday", bad: "since must be an RFC 3339 time or a duration like 24h"},
		{query: "until=-5m", bad: "until must be an RFC 3339 time or a duration like 24h"},
		{query: "since=0s", bad: "since must be"},
	} {
		q, _ := url.ParseQuery(tc.query)
		var since, until time.Time
		err := apijson.TimeRange(q, &since, &until)
		switch {
		case tc.bad != "":
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%q: %v, want %q", tc.query, err, tc.bad)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.ago != 0:
			if d := time.Since(since); d < tc.ago || d > tc.ago+time.Minute {
				t.Errorf("%q: since %v ago, want %v", tc.query, d, tc.ago)
			}
		case !since.Equal(tc.since) || !until.Equal(tc.until):
			t.Errorf("%q: %v %v, want %v %v", tc.query, since, until, tc.since, tc.until)
		}
	}
	// A nil time is not read, whatever the query says.
	q := url.Values{"until": {"not a time"}}
	var since time.Time
	if err := apijson.TimeRange(q, &since, nil); err != nil {
		t.Errorf("until read though not asked for: %v", err)
	}
}
