// Package terms is terms and conditions: documents (a title, a summary,
// the full text) kept in versions, assigned to all users or to groups, and
// users' acceptances of them. A user accepts a document once, not once per
// device; a new version asks everyone to accept again only when the admin
// marks it "require re-acceptance" (a typo fix need not).
//
// The enrollment portal calls Pending after sign-in and Accept for each
// document the user accepts; the admin API calls the rest.
package terms

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Bounds of a document.
const (
	MaxText    = 256 << 10
	MaxTitle   = 256
	MaxSummary = 4 << 10
	MaxGroups  = 100
	// MaxVersions bounds a document's history (each version keeps its text).
	MaxVersions = 1000
)

// reserved names are route segments beside /v1/terms/{name}.
var reserved = []string{"acceptances", "acceptances.csv"}

// Store is what the service reads and writes.
type Store interface {
	storage.TermsStore
	Group(ctx context.Context, name string) (*storage.Group, error)
	UserGroups(ctx context.Context, username string) ([]string, error)
}

// Service is terms and conditions over a store.
type Service struct {
	store Store
	now   func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the service over store.
func New(store Store, opts ...Option) (*Service, error) {
	if store == nil {
		return nil, errors.New("terms: a store is required")
	}
	s := &Service{store: store, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Store is the service's store, for reads it adds nothing to.
func (s *Service) Store() storage.TermsStore { return s.store }

// NormalizeName lowercases and checks a document name.
func NormalizeName(name string) (string, error) {
	n, err := directory.NormalizeName("terms", name)
	if err != nil {
		return "", err
	}
	if slices.Contains(reserved, n) {
		return "", invalid("terms name %q is reserved (it names the acceptance report)", n)
	}
	return n, nil
}

// NewDocument is what an admin gives for a document's first version.
type NewDocument struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Summary  string   `json:"summary,omitempty"`
	Text     string   `json:"text"`
	AllUsers bool     `json:"all_users,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// NewVersion is a document's next version: fields left out (nil) are
// carried over from the current one.
type NewVersion struct {
	Title    *string   `json:"title,omitempty"`
	Summary  *string   `json:"summary,omitempty"`
	Text     *string   `json:"text,omitempty"`
	AllUsers *bool     `json:"all_users,omitempty"`
	Groups   *[]string `json:"groups,omitempty"`
	// RequireReacceptance asks users who accepted an earlier version to
	// accept this one.
	RequireReacceptance bool `json:"require_reacceptance,omitempty"`
}

func checkLine(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return invalid("%s is required", field)
	}
	if !utf8.ValidString(v) || len(v) > max || strings.ContainsAny(v, "\x00\r\n") {
		return invalid("%s: at most %d bytes of UTF-8 on one line", field, max)
	}
	return nil
}

// check checks a version's content and assignment, normalising its groups
// and checking that they exist.
func (s *Service) check(ctx context.Context, d *storage.TermsDocument) error {
	if err := checkLine("title", d.Title, MaxTitle, true); err != nil {
		return err
	}
	if !utf8.ValidString(d.Summary) || len(d.Summary) > MaxSummary || strings.ContainsRune(d.Summary, 0) {
		return invalid("summary: at most %d bytes of UTF-8", MaxSummary)
	}
	if strings.TrimSpace(d.Text) == "" {
		return invalid("text is required")
	}
	if !utf8.ValidString(d.Text) || len(d.Text) > MaxText || strings.ContainsRune(d.Text, 0) {
		return invalid("text: at most %d bytes of UTF-8", MaxText)
	}
	if d.AllUsers == (len(d.Groups) > 0) {
		return invalid("assign the terms to all users (all_users) or to groups, one of the two")
	}
	if len(d.Groups) > MaxGroups {
		return invalid("at most %d groups", MaxGroups)
	}
	groups := make([]string, 0, len(d.Groups))
	for _, g := range d.Groups {
		n, err := directory.NormalizeName("group", g)
		if err != nil {
			return err
		}
		if _, err := s.store.Group(ctx, n); err != nil {
			return err
		}
		if !slices.Contains(groups, n) {
			groups = append(groups, n)
		}
	}
	slices.Sort(groups)
	d.Groups = groups
	if d.AllUsers {
		d.Groups = nil
	}
	return nil
}

// Create adds a document at version 1; storage.ErrConflict when the name
// is taken, storage.ErrNotFound when a group does not exist.
func (s *Service) Create(ctx context.Context, nd NewDocument) (*storage.TermsDocument, error) {
	name, err := NormalizeName(nd.Name)
	if err != nil {
		return nil, err
	}
	d := &storage.TermsDocument{Name: name, Title: nd.Title, Summary: nd.Summary, Text: nd.Text, Version: 1, ReacceptFrom: 1,
		AllUsers: nd.AllUsers, Groups: nd.Groups, CreatedAt: s.now().UTC()}
	if err := s.check(ctx, d); err != nil {
		return nil, err
	}
	if err := s.store.CreateTerms(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Update makes a document's next version. storage.ErrConflict when another
// version was made at the same time (read it and decide again).
func (s *Service) Update(ctx context.Context, name string, nv NewVersion) (*storage.TermsDocument, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return nil, err
	}
	cur, err := s.store.Terms(ctx, n)
	if err != nil {
		return nil, err
	}
	if cur.Version >= MaxVersions {
		return nil, invalid("terms %q have reached %d versions: make a new document", n, MaxVersions)
	}
	d := *cur
	d.Version = cur.Version + 1
	d.RequireReacceptance = nv.RequireReacceptance
	if nv.RequireReacceptance {
		d.ReacceptFrom = d.Version
	}
	d.CreatedAt = s.now().UTC()
	if nv.Title != nil {
		d.Title = *nv.Title
	}
	if nv.Summary != nil {
		d.Summary = *nv.Summary
	}
	if nv.Text != nil {
		d.Text = *nv.Text
	}
	if nv.AllUsers != nil {
		d.AllUsers = *nv.AllUsers
		if d.AllUsers && nv.Groups == nil {
			d.Groups = nil
		}
	}
	if nv.Groups != nil {
		d.Groups = *nv.Groups
		if len(d.Groups) > 0 && nv.AllUsers == nil {
			d.AllUsers = false
		}
	}
	if err := s.check(ctx, &d); err != nil {
		return nil, err
	}
	if err := s.store.PutTermsVersion(ctx, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Delete removes a document, its history and its acceptances.
func (s *Service) Delete(ctx context.Context, name string) error {
	n, err := NormalizeName(name)
	if err != nil {
		return err
	}
	return s.store.DeleteTerms(ctx, n)
}

// applies tells whether a document is assigned to a user in these groups.
func applies(d *storage.TermsDocument, groups []string) bool {
	if d.AllUsers {
		return true
	}
	for _, g := range d.Groups {
		if slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// Pending returns, in name order, the current versions of the documents
// assigned to a user that the user must still accept: never accepted, or
// accepted only in versions older than the newest one that asked for
// re-acceptance.
func (s *Service) Pending(ctx context.Context, username string) ([]storage.TermsDocument, error) {
	user, err := directory.NormalizeName("username", username)
	if err != nil {
		return nil, err
	}
	docs, err := s.store.ListTerms(ctx, "", 0)
	if err != nil || len(docs) == 0 {
		return nil, err
	}
	groups, err := s.store.UserGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	latest, err := s.acceptedVersions(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []storage.TermsDocument
	for i := range docs {
		if applies(&docs[i], groups) && latest[docs[i].Name] < docs[i].ReacceptFrom {
			out = append(out, docs[i])
		}
	}
	return out, nil
}

// acceptedVersions maps each document to the newest version the user accepted.
func (s *Service) acceptedVersions(ctx context.Context, user string) (map[string]int, error) {
	as, err := s.store.ListTermsAcceptances(ctx, storage.TermsAcceptanceFilter{Username: user}, "", 0)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, a := range as {
		out[a.Document] = max(out[a.Document], a.Version)
	}
	return out, nil
}

// Meta is what is known of an acceptance's request.
type Meta struct {
	Address   string
	UserAgent string
}

// Accept records that a user accepted a version of a document (the one
// they were shown). storage.ErrNotFound for an unknown document or user;
// storage.ErrConflict for a version the document never had. Accepting
// again is no change.
func (s *Service) Accept(ctx context.Context, username, document string, version int, m Meta) error {
	user, err := directory.NormalizeName("username", username)
	if err != nil {
		return err
	}
	doc, err := NormalizeName(document)
	if err != nil {
		return err
	}
	if version < 1 {
		return invalid("version must be 1 or more")
	}
	return s.store.AcceptTerms(ctx, &storage.TermsAcceptance{Document: doc, Username: user, Version: version,
		AcceptedAt: s.now().UTC(), Address: clean(m.Address, 64), UserAgent: clean(m.UserAgent, 512)})
}

// clean keeps request facts printable and bounded: they end up in reports
// and CSV files.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for len(s) > max {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// ReportRow is one acceptance in the acceptance report.
type ReportRow struct {
	Username       string    `json:"username"`
	Document       string    `json:"document"`
	Version        int       `json:"version"`
	AcceptedAt     time.Time `json:"accepted_at"`
	AcceptedLatest bool      `json:"accepted_latest"` // the version accepted is the document's current one
	CurrentVersion int       `json:"current_version"`
	Address        string    `json:"address,omitempty"`
	UserAgent      string    `json:"user_agent,omitempty"`
}

// Report returns acceptances in document, user, version order after the
// cursor, at most limit, and the cursor of the next page ("" at the end).
func (s *Service) Report(ctx context.Context, f storage.TermsAcceptanceFilter, after string, limit int) ([]ReportRow, string, error) {
	if f.Username != "" {
		u, err := directory.NormalizeName("username", f.Username)
		if err != nil {
			return nil, "", err
		}
		f.Username = u
	}
	if f.Document != "" {
		d, err := NormalizeName(f.Document)
		if err != nil {
			return nil, "", err
		}
		if _, err := s.store.Terms(ctx, d); err != nil {
			return nil, "", err
		}
		f.Document = d
	}
	if after != "" && !validCursor(after) {
		return nil, "", invalid("after: not a cursor from this report")
	}
	fetch := limit
	if limit > 0 {
		fetch = limit + 1 // one more, to know whether a page follows
	}
	as, err := s.store.ListTermsAcceptances(ctx, f, after, fetch)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if limit > 0 && len(as) > limit {
		as = as[:limit]
		next = as[limit-1].Cursor()
	}
	current := map[string]int{}
	out := make([]ReportRow, 0, len(as))
	for _, a := range as {
		v, ok := current[a.Document]
		if !ok {
			d, err := s.store.Terms(ctx, a.Document)
			if err != nil {
				return nil, "", err
			}
			v = d.Version
			current[a.Document] = v
		}
		out = append(out, ReportRow{Username: a.Username, Document: a.Document, Version: a.Version, AcceptedAt: a.AcceptedAt,
			AcceptedLatest: a.Version == v, CurrentVersion: v, Address: a.Address, UserAgent: a.UserAgent})
	}
	return out, next, nil
}

// validCursor checks the shape of a TermsAcceptance.Cursor.
func validCursor(c string) bool {
	parts := strings.Split(c, "/")
	if len(parts) != 3 || len(parts[2]) != 10 {
		return false
	}
	for _, p := range parts[:2] {
		if _, err := directory.NormalizeName("cursor", p); err != nil || p != strings.ToLower(p) {
			return false
		}
	}
	for _, r := range parts[2] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
