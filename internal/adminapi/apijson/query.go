package apijson

import (
	"net/url"
	"time"
)

// TimeRange reads a listing's since and until parameters into the times
// given (a nil one is not read): each an RFC 3339 time, or a duration
// meaning that long ago (24h).
func TimeRange(q url.Values, since, until *time.Time) error {
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", since}, {"until", until}} {
		s := q.Get(p.name)
		if p.t == nil || s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if d, derr := time.ParseDuration(s); err != nil && derr == nil && d > 0 {
			t, err = time.Now().Add(-d), nil
		}
		if err != nil {
			return Bad("%s must be an RFC 3339 time or a duration like 24h", p.name)
		}
		*p.t = t
	}
	return nil
}
