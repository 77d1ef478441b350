package policy

import (
	"context"
	"time"

	"github.com/orchardmdm/orchard/mdm"
)

// Day counts the device enrollments that began on one UTC day.
type Day struct {
	Day         string         `json:"day"` // 2006-01-02
	Total       int            `json:"total"`
	ByMethod    map[string]int `json:"by_method"`
	ByPlatform  map[string]int `json:"by_platform"`
	ByOwnership map[string]int `json:"by_ownership"`
}

// Summary is the enrollment summary report.
type Summary struct {
	Since time.Time `json:"since"`
	Days  []Day     `json:"days"`
	// Users: every user holding a device (or a DEM), against their limit,
	// at most maxSummaryUsers of them.
	Users          []Limit `json:"users"`
	UsersTruncated bool    `json:"users_truncated,omitempty"`
}

const maxSummaryUsers = 1000

// Summary counts enrollments of the last days (today included) and
// reports every user's devices against their limit.
func (e *Engine) Summary(ctx context.Context, now time.Time, days int) (*Summary, error) {
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1-days)
	out := &Summary{Since: start, Days: make([]Day, days), Users: []Limit{}}
	for i := range out.Days {
		out.Days[i] = Day{Day: start.AddDate(0, 0, i).Format(time.DateOnly), ByMethod: map[string]int{}, ByPlatform: map[string]int{}, ByOwnership: map[string]int{}}
	}
	for after := ""; ; {
		page, err := e.store.ListEnrollments(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for i := range page {
			en := &page[i]
			after = en.ID
			if en.ID != en.DeviceID || en.EnrolledAt.Before(start) {
				continue
			}
			n := int(en.EnrolledAt.UTC().Sub(start) / (24 * time.Hour))
			if n < 0 || n >= days {
				continue
			}
			d := &out.Days[n]
			d.Total++
			d.ByMethod[orNone(en.EnrollmentMethod)]++
			platform := ""
			if en.Facts != nil {
				platform = mdm.Platform(en.Facts.ProductName, en.Facts.Model)
			}
			d.ByPlatform[orNone(platform)]++
			d.ByOwnership[orNone(string(en.Ownership))]++
		}
		if len(page) < 1000 {
			break
		}
	}
	for after := ""; ; {
		users, err := e.store.ListUsers(ctx, after, 500)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			after = u.Username
			l, err := e.UserLimit(ctx, u.Username)
			if err != nil {
				return nil, err
			}
			if l.Held == 0 && !l.DEM {
				continue
			}
			if len(out.Users) == maxSummaryUsers {
				out.UsersTruncated = true
				return out, nil
			}
			out.Users = append(out.Users, *l)
		}
		if len(users) < 500 {
			break
		}
	}
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
