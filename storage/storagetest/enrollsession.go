package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// runEnrollmentSessions is the conformance suite of
// storage.EnrollmentSessionStore.
func runEnrollmentSessions(t *testing.T, newStore func(t *testing.T) storage.EnrollmentSessionStore) {
	ctx := context.Background()
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	ids := func(ss []storage.EnrollmentSession) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return strings.Join(out, ",")
	}

	t.Run("Record", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.EnrollmentSession(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing session: %v", err)
		}
		_, err := s.RecordEnrollmentStage(ctx, "s1", storage.EnrollmentStage{Stage: "signin_shown", At: at(0)},
			storage.EnrollmentFacts{Method: "portal", Platform: "iOS", Model: "iPhone14,2"})
		must(t, err)
		_, err = s.RecordEnrollmentStage(ctx, "s1", storage.EnrollmentStage{Stage: "signed_in", At: at(1)},
			storage.EnrollmentFacts{Username: "ann", Platform: ""}) // empty facts do not clear
		must(t, err)
		out, err := s.RecordEnrollmentStage(ctx, "s1", storage.EnrollmentStage{Stage: "terms_accepted", At: at(40)},
			storage.EnrollmentFacts{OSVersion: "18.1"})
		must(t, err)
		got, err := s.EnrollmentSession(ctx, "s1")
		must(t, err)
		for _, sess := range []*storage.EnrollmentSession{out, got} {
			if sess.Username != "ann" || sess.Method != "portal" || sess.Platform != "iOS" || sess.Model != "iPhone14,2" ||
				sess.OSVersion != "18.1" || !sess.StartedAt.Equal(at(0)) || len(sess.Stages) != 3 ||
				sess.Stages[2].Stage != "terms_accepted" || !sess.Stages[2].At.Equal(at(40)) {
				t.Fatalf("session %+v", sess)
			}
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		s := newStore(t)
		for i := range storage.MaxSessionStages + 10 {
			_, err := s.RecordEnrollmentStage(ctx, "s1", storage.EnrollmentStage{Stage: fmt.Sprintf("st%d", i), At: at(i)}, storage.EnrollmentFacts{})
			must(t, err)
		}
		got, err := s.EnrollmentSession(ctx, "s1")
		must(t, err)
		last := got.Stages[len(got.Stages)-1]
		if len(got.Stages) != storage.MaxSessionStages || last.Stage != fmt.Sprintf("st%d", storage.MaxSessionStages+9) {
			t.Fatalf("%d stages, last %+v", len(got.Stages), last)
		}
	})

	t.Run("ListAndDelete", func(t *testing.T) {
		s := newStore(t)
		for i, id := range []string{"c", "a", "b", "d"} {
			_, err := s.RecordEnrollmentStage(ctx, id, storage.EnrollmentStage{Stage: "signin_shown", At: at(i / 2 * 10)}, storage.EnrollmentFacts{})
			must(t, err)
		}
		// Started: a and c at 0, b and d at 10: order by time, then ID.
		all, err := s.ListEnrollmentSessions(ctx, time.Time{}, "", 0)
		must(t, err)
		if ids(all) != "a,c,b,d" {
			t.Fatalf("all: %s", ids(all))
		}
		page, err := s.ListEnrollmentSessions(ctx, time.Time{}, all[1].Cursor(), 2)
		must(t, err)
		if ids(page) != "b,d" {
			t.Fatalf("after c: %s", ids(page))
		}
		since, err := s.ListEnrollmentSessions(ctx, at(5), "", 0)
		must(t, err)
		if ids(since) != "b,d" {
			t.Fatalf("since 5: %s", ids(since))
		}
		// A cursor before since does not reach back past it.
		if got, _ := s.ListEnrollmentSessions(ctx, at(10), all[0].Cursor(), 0); ids(got) != "b,d" {
			t.Fatalf("since 10 after a: %s", ids(got))
		}
		if got, _ := s.ListEnrollmentSessions(ctx, at(10), all[2].Cursor(), 0); ids(got) != "d" {
			t.Fatalf("since 10 after b: %s", ids(got))
		}
		n, err := s.DeleteEnrollmentSessions(ctx, at(10))
		must(t, err)
		if n != 2 {
			t.Fatalf("deleted %d", n)
		}
		if _, err := s.EnrollmentSession(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a kept: %v", err)
		}
		if left, _ := s.ListEnrollmentSessions(ctx, time.Time{}, "", 0); ids(left) != "b,d" {
			t.Fatalf("left: %s", ids(left))
		}
	})
}
