// Package directory is Orchard's local directory of users and static
// groups: it checks and normalises what the admin API and CSV imports
// give it, hashes passwords with argon2id, and signs users in behind the
// Authenticator interface (local passwords now; an OIDC provider can take
// its place later without the portal changing).
package directory

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchardmdm/orchard/storage"
)

// ErrInvalid wraps every refusal of bad input (the admin API answers 400).
var ErrInvalid = errors.New("invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// nameRE is what usernames and group names may be (after lowercasing):
// safe in URLs, CSV and log lines.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// reservedName is a route segment beside /v1/users/{username} and
// /v1/groups/{name}/members/{username}: a user of that name could not be
// reached there.
const reservedName = "import"

// MaxImportRows bounds one CSV import.
const MaxImportRows = 10_000

// Service is the directory over a store.
type Service struct {
	store  storage.DirectoryStore
	params Params
	now    func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithParams sets the argon2id cost of new hashes (tests use cheap ones).
func WithParams(p Params) Option { return func(s *Service) { s.params = p } }

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the directory over store.
func New(store storage.DirectoryStore, opts ...Option) (*Service, error) {
	if store == nil {
		return nil, errors.New("directory: a store is required")
	}
	s := &Service{store: store, params: DefaultParams, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Store is the directory's store, for reads the service adds nothing to.
func (s *Service) Store() storage.DirectoryStore { return s.store }

// NewUser is what an admin gives for a user.
type NewUser struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
	// Password is optional: a user without one cannot sign in with a
	// password (a later OIDC sign-in may still admit them).
	Password string `json:"password,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// NormalizeName lowercases and checks a username or group name.
func NormalizeName(kind, name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if !nameRE.MatchString(n) {
		return "", invalid("%s %q: use 1 to 64 of a-z, 0-9, '.', '_', '@', '-', starting with a letter or digit", kind, truncate(name))
	}
	return n, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) || len(v) > max || strings.ContainsAny(v, "\x00\r\n") {
		return invalid("%s: at most %d bytes of UTF-8 on one line", field, max)
	}
	return nil
}

func checkEmail(v string) error {
	if v == "" {
		return nil
	}
	if err := checkText("email", v, 254); err != nil {
		return err
	}
	if a, err := mail.ParseAddress(v); err != nil || a.Address != v {
		return invalid("email %q is not an address", truncate(v))
	}
	return nil
}

func checkPassword(pw string) error {
	if pw == "" {
		return nil
	}
	if n := utf8.RuneCountInString(pw); n < 8 || len(pw) > MaxPasswordLen || !utf8.ValidString(pw) {
		return invalid("password: 8 to %d bytes of UTF-8", MaxPasswordLen)
	}
	return nil
}

// build checks nu and makes its record (hashing the password).
func (s *Service) build(nu NewUser) (storage.DirectoryUser, error) {
	name, err := NormalizeName("username", nu.Username)
	if err != nil {
		return storage.DirectoryUser{}, err
	}
	if name == reservedName {
		return storage.DirectoryUser{}, invalid("username %q is reserved (it names the CSV import routes)", name)
	}
	if err := checkText("display_name", nu.DisplayName, 256); err != nil {
		return storage.DirectoryUser{}, err
	}
	if err := checkEmail(nu.Email); err != nil {
		return storage.DirectoryUser{}, err
	}
	if err := checkPassword(nu.Password); err != nil {
		return storage.DirectoryUser{}, err
	}
	now := s.now().UTC()
	u := storage.DirectoryUser{Username: name, DisplayName: nu.DisplayName, Email: nu.Email, Disabled: nu.Disabled,
		CreatedAt: now, UpdatedAt: now}
	if nu.Password != "" {
		if u.PasswordHash, err = HashPassword(nu.Password, s.params); err != nil {
			return storage.DirectoryUser{}, err
		}
	}
	return u, nil
}

// CreateUser adds one user; storage.ErrConflict when the name is taken.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (*storage.DirectoryUser, error) {
	u, err := s.build(nu)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateUsers(ctx, []storage.DirectoryUser{u}); err != nil {
		return nil, err
	}
	return &u, nil
}

// UserChange is a partial update: nil fields stay as they are.
type UserChange struct {
	DisplayName *string `json:"display_name,omitempty"`
	Email       *string `json:"email,omitempty"`
	Password    *string `json:"password,omitempty"`
	Disabled    *bool   `json:"disabled,omitempty"`
}

// UpdateUser applies a change; an empty password removes the password.
func (s *Service) UpdateUser(ctx context.Context, username string, c UserChange) (*storage.DirectoryUser, error) {
	name, err := NormalizeName("username", username)
	if err != nil {
		return nil, err
	}
	var hash string
	if c.DisplayName != nil {
		if err := checkText("display_name", *c.DisplayName, 256); err != nil {
			return nil, err
		}
	}
	if c.Email != nil {
		if err := checkEmail(*c.Email); err != nil {
			return nil, err
		}
	}
	if c.Password != nil && *c.Password != "" {
		if err := checkPassword(*c.Password); err != nil {
			return nil, err
		}
		// Hashed once, outside the write: fn may run more than once.
		if hash, err = HashPassword(*c.Password, s.params); err != nil {
			return nil, err
		}
	}
	now := s.now().UTC()
	return s.store.UpdateUser(ctx, name, func(u *storage.DirectoryUser) error {
		if c.DisplayName != nil {
			u.DisplayName = *c.DisplayName
		}
		if c.Email != nil {
			u.Email = *c.Email
		}
		if c.Password != nil {
			u.PasswordHash = hash
		}
		if c.Disabled != nil {
			u.Disabled = *c.Disabled
		}
		u.UpdatedAt = now
		return nil
	})
}

// CreateGroup adds a group.
func (s *Service) CreateGroup(ctx context.Context, name, description string) (*storage.Group, error) {
	n, err := NormalizeName("group", name)
	if err != nil {
		return nil, err
	}
	if err := checkText("description", description, 1024); err != nil {
		return nil, err
	}
	g := &storage.Group{Name: n, Description: description, CreatedAt: s.now().UTC()}
	if err := s.store.CreateGroup(ctx, g); err != nil {
		return nil, err
	}
	return g, nil
}

// AddMembers adds users (by name, normalised) to a group.
func (s *Service) AddMembers(ctx context.Context, group string, usernames []string) error {
	g, err := NormalizeName("group", group)
	if err != nil {
		return err
	}
	if len(usernames) == 0 || len(usernames) > MaxImportRows {
		return invalid("give 1 to %d usernames", MaxImportRows)
	}
	names := make([]string, len(usernames))
	for i, u := range usernames {
		if names[i], err = NormalizeName("username", u); err != nil {
			return err
		}
	}
	return s.store.AddGroupMembers(ctx, g, names)
}
