package storage

import (
	"context"
	"fmt"
	"time"
)

// EnrollmentStage is one stage an enrollment session reached, and when.
type EnrollmentStage struct {
	Stage string    `json:"stage"`
	At    time.Time `json:"at"`
}

// EnrollmentFacts is what is known of a session's user and device; empty
// fields are unknown.
type EnrollmentFacts struct {
	Username  string `json:"username,omitempty"`
	Method    string `json:"method,omitempty"` // portal or setup-assistant
	Platform  string `json:"platform,omitempty"`
	Serial    string `json:"serial,omitempty"`
	UDID      string `json:"udid,omitempty"`
	Model     string `json:"model,omitempty"`
	OSVersion string `json:"os_version,omitempty"`
}

// EnrollmentSession is one attempt of a user (or a Setup Assistant) to
// enroll a device through the portal, and the stages it reached.
type EnrollmentSession struct {
	ID string `json:"id"`
	EnrollmentFacts
	StartedAt time.Time         `json:"started_at"`
	Stages    []EnrollmentStage `json:"stages"`
}

// Cursor is the session's place in ListEnrollmentSessions order.
func (s *EnrollmentSession) Cursor() string {
	return fmt.Sprintf("%020d/%s", s.StartedAt.UnixNano(), s.ID)
}

// MaxSessionStages bounds the stages one session keeps: past it the last
// one is replaced, so a session cannot grow without end.
const MaxSessionStages = 64

// EnrollmentSessionStore records enrollment sessions for the
// incomplete-enrollment report.
type EnrollmentSessionStore interface {
	// RecordEnrollmentStage appends a stage to a session, creating it (with
	// StartedAt the stage's time) at its first. Non-empty facts replace the
	// ones known; empty ones never clear them. It returns the session as
	// written.
	RecordEnrollmentStage(ctx context.Context, id string, st EnrollmentStage, facts EnrollmentFacts) (*EnrollmentSession, error)
	// EnrollmentSession returns a session, or ErrNotFound.
	EnrollmentSession(ctx context.Context, id string) (*EnrollmentSession, error)
	// ListEnrollmentSessions returns sessions started at or after since,
	// ordered by start time then ID, after the given cursor
	// (EnrollmentSession.Cursor), at most limit (limit <= 0: all).
	ListEnrollmentSessions(ctx context.Context, since time.Time, after string, limit int) ([]EnrollmentSession, error)
	// DeleteEnrollmentSessions removes the sessions started before t and
	// returns how many.
	DeleteEnrollmentSessions(ctx context.Context, before time.Time) (int, error)
}

// Merge applies non-empty facts over known ones.
func (f *EnrollmentFacts) Merge(n EnrollmentFacts) {
	for _, p := range []struct {
		dst *string
		src string
	}{
		{&f.Username, n.Username}, {&f.Method, n.Method}, {&f.Platform, n.Platform}, {&f.Serial, n.Serial},
		{&f.UDID, n.UDID}, {&f.Model, n.Model}, {&f.OSVersion, n.OSVersion},
	} {
		if p.src != "" {
			*p.dst = p.src
		}
	}
}

// AddStage appends a stage, keeping at most MaxSessionStages.
func (s *EnrollmentSession) AddStage(st EnrollmentStage) {
	if len(s.Stages) >= MaxSessionStages {
		s.Stages[len(s.Stages)-1] = st
		return
	}
	s.Stages = append(s.Stages, st)
}
