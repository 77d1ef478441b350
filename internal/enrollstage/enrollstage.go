// Package enrollstage records the stages that user enrollments (the
// portal, and Setup Assistant's sign-in) reach, and reports the ones that
// stopped short: the incomplete-enrollment report.
//
// The stages follow Orchard's portal flow; each belongs to one of the
// report's sections (sign-in, terms, category, profile, enrolled). A
// session is incomplete when it never reached "enrolled", and flagged
// "took > 30 minutes" when any step from one stage to the next took longer
// than that, even if it enrolled in the end.
package enrollstage

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/storage"
)

// ErrInvalid wraps every refusal of bad input (the admin API answers 400).
var ErrInvalid = errors.New("invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Stage is a point an enrollment reached.
type Stage string

// The stages, in the order of the flow.
const (
	SigninShown       Stage = "signin_shown"       // the sign-in page was served
	SignedIn          Stage = "signed_in"          // the user signed in
	TermsShown        Stage = "terms_shown"        // terms and conditions were shown
	TermsAccepted     Stage = "terms_accepted"     // every applicable document accepted
	TermsDeclined     Stage = "terms_declined"     // the user declined (the enrollment stops)
	CategoryShown     Stage = "category_shown"     // the category choice was shown
	CategoryChosen    Stage = "category_chosen"    // the user picked a category
	ProfileDownloaded Stage = "profile_downloaded" // the enrollment profile was handed out
	Enrolled          Stage = "enrolled"           // the device enrolled (MDM TokenUpdate)
)

// Stages lists every stage in flow order.
var Stages = []Stage{SigninShown, SignedIn, TermsShown, TermsAccepted, TermsDeclined, CategoryShown, CategoryChosen, ProfileDownloaded, Enrolled}

// Section is the part of the flow a stage belongs to.
func (s Stage) Section() string {
	switch s {
	case SigninShown, SignedIn:
		return "sign-in"
	case TermsShown, TermsAccepted, TermsDeclined:
		return "terms"
	case CategoryShown, CategoryChosen:
		return "category"
	case ProfileDownloaded:
		return "profile"
	case Enrolled:
		return "enrolled"
	}
	return ""
}

// Methods of enrollment a session can record.
const (
	MethodPortal         = "portal"
	MethodSetupAssistant = "setup-assistant"
)

// DefaultWindow is how far back the report looks unless told (the seed's
// report shows two weeks).
const DefaultWindow = 14 * 24 * time.Hour

// SlowStep is the time between two stages past which the seed's report
// says "took > 30 minutes".
const SlowStep = 30 * time.Minute

// Facts is what is known of the user and the device at a stage; empty
// fields are unknown (and never clear what an earlier stage recorded).
type Facts = storage.EnrollmentFacts

// Recorder records stages and answers the report.
type Recorder struct {
	store storage.EnrollmentSessionStore
	now   func() time.Time
}

// Option configures a Recorder.
type Option func(*Recorder)

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(r *Recorder) { r.now = now } }

// New returns a recorder over store.
func New(store storage.EnrollmentSessionStore, opts ...Option) (*Recorder, error) {
	if store == nil {
		return nil, errors.New("enrollstage: a store is required")
	}
	r := &Recorder{store: store, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

var sessionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func checkFact(field, v string, max int) error {
	if !utf8.ValidString(v) || len(v) > max || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return invalid("%s: at most %d printable bytes", field, max)
	}
	return nil
}

// Record notes that session reached stage, with the facts known now. The
// session is created at its first stage. The caller chooses session IDs
// (1 to 64 of A-Z a-z 0-9 _ -), one per enrollment attempt.
func (r *Recorder) Record(ctx context.Context, sessionID string, stage Stage, facts Facts) error {
	if !sessionRE.MatchString(sessionID) {
		return invalid("session ID: 1 to 64 of A-Z a-z 0-9 _ -")
	}
	if !slices.Contains(Stages, stage) {
		return invalid("unknown stage %q", truncate(string(stage)))
	}
	if facts.Username != "" {
		u, err := directory.NormalizeName("username", facts.Username)
		if err != nil {
			return err
		}
		facts.Username = u
	}
	if facts.Method != "" && facts.Method != MethodPortal && facts.Method != MethodSetupAssistant {
		return invalid("method %q: portal or setup-assistant", truncate(facts.Method))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"platform", facts.Platform, 32}, {"serial", facts.Serial, 64}, {"udid", facts.UDID, 64}, {"model", facts.Model, 64}, {"os_version", facts.OSVersion, 32}} {
		if err := checkFact(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	// Microseconds: what every backend keeps, so cursors compare exactly.
	at := r.now().UTC().Truncate(time.Microsecond)
	_, err := r.store.RecordEnrollmentStage(ctx, sessionID, storage.EnrollmentStage{Stage: string(stage), At: at}, facts)
	return err
}

func truncate(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// Row is one session in the incomplete-enrollment report.
type Row struct {
	SessionID string `json:"session_id"`
	storage.EnrollmentFacts
	StartedAt   time.Time `json:"started_at"`
	LastStage   string    `json:"last_stage"`
	LastStageAt time.Time `json:"last_stage_at"`
	Section     string    `json:"section"` // of the last stage
	// TimeSpentSeconds is from the first stage to the last.
	TimeSpentSeconds int64 `json:"time_spent_seconds"`
	Enrolled         bool  `json:"enrolled"`
	// Abandoned: not enrolled, and nothing for more than 30 minutes.
	Abandoned bool `json:"abandoned"`
	// TookOver30Minutes: some step between two stages took longer than 30
	// minutes; SlowStage is the stage that came late.
	TookOver30Minutes bool   `json:"took_over_30_minutes"`
	SlowStage         string `json:"slow_stage,omitempty"`
}

// Query selects the report's sessions.
type Query struct {
	Since    time.Time // sessions started at or after; zero: the past DefaultWindow
	Platform string    // "" for all
	Section  string    // of the last stage; "" for all
	After    string    // a Row cursor (the answer's next)
	Limit    int       // rows per page; <= 0 for all
}

// Report is a page of the incomplete-enrollment report, with the counts of
// the whole query.
type Report struct {
	Initiated  int     `json:"initiated"`  // sessions started in the window (and platform)
	Incomplete int     `json:"incomplete"` // of those, never enrolled
	Slow       int     `json:"slow"`       // of those, enrolled but a step took > 30 minutes
	Rate       float64 `json:"incomplete_rate"`
	Rows       []Row   `json:"sessions"`
	Next       string  `json:"next"`
}

// rowOf reports a session, and whether it belongs in the report.
func rowOf(s *storage.EnrollmentSession, now time.Time) (Row, bool) {
	row := Row{SessionID: s.ID, EnrollmentFacts: s.EnrollmentFacts, StartedAt: s.StartedAt}
	if len(s.Stages) == 0 {
		return row, false
	}
	last := s.Stages[len(s.Stages)-1]
	row.LastStage, row.LastStageAt, row.Section = last.Stage, last.At, Stage(last.Stage).Section()
	row.TimeSpentSeconds = int64(last.At.Sub(s.StartedAt) / time.Second)
	for i, st := range s.Stages {
		if st.Stage == string(Enrolled) {
			row.Enrolled = true
		}
		if i > 0 && st.At.Sub(s.Stages[i-1].At) > SlowStep && !row.TookOver30Minutes {
			row.TookOver30Minutes, row.SlowStage = true, st.Stage
		}
	}
	row.Abandoned = !row.Enrolled && now.Sub(last.At) > SlowStep
	return row, !row.Enrolled || row.TookOver30Minutes
}

// Incomplete answers the incomplete-enrollment report.
func (r *Recorder) Incomplete(ctx context.Context, q Query) (*Report, error) {
	if q.Section != "" && !slices.ContainsFunc(Stages, func(s Stage) bool { return s.Section() == q.Section }) {
		return nil, invalid("section %q: sign-in, terms, category, profile or enrolled", truncate(q.Section))
	}
	var afterT time.Time
	afterID := ""
	if q.After != "" {
		var ok bool
		if afterT, afterID, ok = parseCursor(q.After); !ok {
			return nil, invalid("after: not a cursor from this report")
		}
	}
	now := r.now()
	if q.Since.IsZero() {
		q.Since = now.Add(-DefaultWindow)
	}
	rep := &Report{Rows: []Row{}}
	cursor := ""
	for {
		page, err := r.store.ListEnrollmentSessions(ctx, q.Since, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for i := range page {
			s := &page[i]
			cursor = s.Cursor()
			if q.Platform != "" && !strings.EqualFold(s.Platform, q.Platform) {
				continue
			}
			rep.Initiated++
			row, in := rowOf(s, now)
			if !in {
				continue
			}
			if row.Enrolled {
				rep.Slow++
			} else {
				rep.Incomplete++
			}
			if q.Section != "" && row.Section != q.Section {
				continue
			}
			if q.After != "" && !after(s, afterT, afterID) {
				continue
			}
			if q.Limit > 0 && len(rep.Rows) == q.Limit {
				if rep.Next == "" {
					rep.Next = rep.Rows[len(rep.Rows)-1].cursor()
				}
				continue // keep counting
			}
			rep.Rows = append(rep.Rows, row)
		}
		if len(page) < 1000 {
			break
		}
	}
	if rep.Initiated > 0 {
		rep.Rate = float64(rep.Incomplete) / float64(rep.Initiated)
	}
	return rep, nil
}

func (r *Row) cursor() string {
	s := storage.EnrollmentSession{ID: r.SessionID, StartedAt: r.StartedAt}
	return s.Cursor()
}

func after(s *storage.EnrollmentSession, t time.Time, id string) bool {
	return s.StartedAt.After(t) || (s.StartedAt.Equal(t) && s.ID > id)
}

func parseCursor(c string) (time.Time, string, bool) {
	ns, id, ok := strings.Cut(c, "/")
	if !ok || len(ns) != 20 || !sessionRE.MatchString(id) {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, "", false
	}
	return time.Unix(0, n), id, true
}
