package directory

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/storage"
)

// Problem is one refused CSV line (1 is the header).
type Problem struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// ImportError refuses a whole CSV: nothing was written.
type ImportError struct{ Problems []Problem }

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CSV refused, nothing imported: %d bad line(s):", len(e.Problems))
	for i, p := range e.Problems {
		if i == 5 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " line %d: %s;", p.Line, p.Error)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap makes an ImportError an ErrInvalid.
func (e *ImportError) Unwrap() error { return ErrInvalid }

// maxProblems bounds the problems reported for one CSV.
const maxProblems = 100

type csvRows struct {
	header map[string]int
	rows   [][]string
	lines  []int
}

// readCSV reads a CSV with a header, requiring the given columns and
// allowing the optional ones; anything else in the header is refused.
func readCSV(r io.Reader, required, optional []string) (*csvRows, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &ImportError{[]Problem{{1, "empty CSV: the first line must be a header (" + strings.Join(required, ",") + ")"}}}
	}
	if err != nil {
		return nil, &ImportError{[]Problem{{1, err.Error()}}}
	}
	c := &csvRows{header: map[string]int{}}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(required, h) && !slices.Contains(optional, h) {
			return nil, &ImportError{[]Problem{{1, fmt.Sprintf("unknown column %q (columns: %s)", truncate(h), strings.Join(append(slices.Clone(required), optional...), ", "))}}}
		}
		if _, dup := c.header[h]; dup {
			return nil, &ImportError{[]Problem{{1, fmt.Sprintf("column %q twice", h)}}}
		}
		c.header[h] = i
	}
	for _, req := range required {
		if _, ok := c.header[req]; !ok {
			return nil, &ImportError{[]Problem{{1, fmt.Sprintf("missing column %q", req)}}}
		}
	}
	for {
		line, _ := cr.FieldPos(0)
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &ImportError{[]Problem{{pe.StartLine, pe.Err.Error()}}}
			}
			return nil, err
		}
		line, _ = cr.FieldPos(0)
		if len(c.rows) == MaxImportRows {
			return nil, &ImportError{[]Problem{{line, fmt.Sprintf("more than %d rows: split the file", MaxImportRows)}}}
		}
		c.rows, c.lines = append(c.rows, rec), append(c.lines, line)
	}
	if len(c.rows) == 0 {
		return nil, &ImportError{[]Problem{{1, "no rows after the header"}}}
	}
	return c, nil
}

func (c *csvRows) get(row []string, col string) string {
	i, ok := c.header[col]
	if !ok || i >= len(row) {
		return ""
	}
	return strings.TrimSpace(row[i])
}

func addProblem(ps []Problem, line int, err error) []Problem {
	if len(ps) < maxProblems {
		ps = append(ps, Problem{line, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")})
	}
	return ps
}

// ImportUsers creates every user of a CSV (header: username, and any of
// display_name, email, password, disabled) or, when any line is bad or any
// username is taken, none; the ImportError lists the bad lines.
func (s *Service) ImportUsers(ctx context.Context, r io.Reader) (int, error) {
	c, err := readCSV(r, []string{"username"}, []string{"display_name", "email", "password", "disabled"})
	if err != nil {
		return 0, err
	}
	var problems []Problem
	users := make([]storage.DirectoryUser, 0, len(c.rows))
	passwords := make([]string, 0, len(c.rows)) // hashed once the file is known good
	seen := map[string]int{}
	for i, row := range c.rows {
		line := c.lines[i]
		nu := NewUser{Username: c.get(row, "username"), DisplayName: c.get(row, "display_name"),
			Email: c.get(row, "email"), Password: c.get(row, "password")}
		if d := c.get(row, "disabled"); d != "" {
			b, err := strconv.ParseBool(d)
			if err != nil {
				problems = addProblem(problems, line, invalid("disabled %q: use true or false", truncate(d)))
				continue
			}
			nu.Disabled = b
		}
		// Check everything before hashing anything: a bad file costs no hashes.
		if _, err := NormalizeName("username", nu.Username); err != nil {
			problems = addProblem(problems, line, err)
			continue
		}
		u, err := s.build(NewUser{Username: nu.Username, DisplayName: nu.DisplayName, Email: nu.Email, Disabled: nu.Disabled})
		if err == nil {
			err = checkPassword(nu.Password)
		}
		if err != nil {
			problems = addProblem(problems, line, err)
			continue
		}
		if first, dup := seen[u.Username]; dup {
			problems = addProblem(problems, line, fmt.Errorf("username %q already on line %d", u.Username, first))
			continue
		}
		seen[u.Username] = line
		if _, err := s.store.User(ctx, u.Username); err == nil {
			problems = addProblem(problems, line, fmt.Errorf("user %q already exists", u.Username))
			continue
		} else if !errors.Is(err, storage.ErrNotFound) {
			return 0, err
		}
		users, passwords = append(users, u), append(passwords, nu.Password)
	}
	if len(problems) > 0 {
		return 0, &ImportError{problems}
	}
	for i, pw := range passwords {
		if pw == "" {
			continue
		}
		if users[i].PasswordHash, err = HashPassword(pw, s.params); err != nil {
			return 0, err
		}
	}
	if err := s.store.CreateUsers(ctx, users); err != nil {
		return 0, err
	}
	return len(users), nil
}

// ImportMembers adds every user of a CSV (header: username) to a group,
// or none when any line is bad or names an unknown user.
func (s *Service) ImportMembers(ctx context.Context, group string, r io.Reader) (int, error) {
	g, err := NormalizeName("group", group)
	if err != nil {
		return 0, err
	}
	if _, err := s.store.Group(ctx, g); err != nil {
		return 0, err
	}
	c, err := readCSV(r, []string{"username"}, nil)
	if err != nil {
		return 0, err
	}
	var problems []Problem
	var names []string
	for i, row := range c.rows {
		line := c.lines[i]
		n, err := NormalizeName("username", c.get(row, "username"))
		if err != nil {
			problems = addProblem(problems, line, err)
			continue
		}
		if _, err := s.store.User(ctx, n); errors.Is(err, storage.ErrNotFound) {
			problems = addProblem(problems, line, fmt.Errorf("no user %q", n))
			continue
		} else if err != nil {
			return 0, err
		}
		names = append(names, n)
	}
	if len(problems) > 0 {
		return 0, &ImportError{problems}
	}
	if err := s.store.AddGroupMembers(ctx, g, names); err != nil {
		return 0, err
	}
	return len(names), nil
}
