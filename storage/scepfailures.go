package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// The SCEP-stage refusals (a challenge wrong, used, expired or revoked)
// come before any authentication, so anyone can cause them. They are kept
// apart from the failure log, as aggregates by code and source address,
// so that no flood of them can push a policy refusal out of the log nor
// grow what is stored.

// MaxSCEPFailures bounds the aggregates kept by source address; beyond it
// the oldest fold into one aggregate per code from OtherSources.
const MaxSCEPFailures = 200

// OtherSources is the Source of the aggregate that stands for the sources
// no longer (or never) tracked one by one.
const OtherSources = "other"

// SCEPFailureIDPrefix starts every aggregate's ID: "scep-" and 16 hex
// digits of a sequence, so aggregates sort in the order they were first
// recorded and after every ID of the failure log (16 hex digits).
const SCEPFailureIDPrefix = "scep-"

// SCEPFailureID is the ID of the aggregate created seq-th.
func SCEPFailureID(seq uint64) string { return fmt.Sprintf("%s%016x", SCEPFailureIDPrefix, seq) }

// IsSCEPFailureID reports whether id names a SCEP-stage aggregate.
func IsSCEPFailureID(id string) bool { return strings.HasPrefix(id, SCEPFailureIDPrefix) }

// SCEPFailureStore keeps the SCEP-stage aggregates.
type SCEPFailureStore interface {
	// RecordSCEPFailures folds a batch of aggregates into the stored ones
	// in one write (MergeSCEPFailures says how); each needs a Code.
	RecordSCEPFailures(ctx context.Context, batch []EnrollmentFailure) error
	// ListSCEPFailures returns aggregates ordered by ID after the given one.
	ListSCEPFailures(ctx context.Context, after string, limit int) ([]EnrollmentFailure, error)
}

// FailureKey is what SCEP-stage refusals aggregate by: code and source.
func FailureKey(f *EnrollmentFailure) string { return f.Code + "\x00" + f.Source }

// Fold adds the attempts of g (same key) to f: counts add up, the time
// span widens, and the details of the later one stand.
func (f *EnrollmentFailure) Fold(g EnrollmentFailure) {
	count, first := max(f.Count, 1)+max(g.Count, 1), f.FirstAt
	if first.IsZero() {
		first = f.At
	}
	if gf := cmp.Or(g.FirstAt, g.At); gf.Before(first) {
		first = gf
	}
	if !g.At.Before(f.At) {
		id := f.ID
		*f = g
		f.ID = id
	}
	f.Count, f.FirstAt = count, first
}

// CheckSCEPFailures refuses a batch a store should not fold.
func CheckSCEPFailures(batch []EnrollmentFailure) error {
	for i := range batch {
		if batch[i].Code == "" || batch[i].Reason == "" {
			return fmt.Errorf("record SCEP failures: record %d needs a code and a reason", i)
		}
	}
	return nil
}

// MergeSCEPFailures folds batch into the stored aggregates kept, the one
// rule both backends apply in their write: an aggregate of the same code
// and source grows, a new one gets newID; then, beyond MaxSCEPFailures by
// source, the least recently seen fold into their code's OtherSources
// aggregate, so no attempt goes uncounted. It returns the aggregates to
// store (new or changed) and the IDs to delete.
func MergeSCEPFailures(kept, batch []EnrollmentFailure, newID func() (string, error)) (put []EnrollmentFailure, del []string, err error) {
	byKey := make(map[string]*EnrollmentFailure, len(kept)+len(batch))
	changed := map[string]bool{}
	for i := range kept {
		f := kept[i]
		byKey[FailureKey(&f)] = &f
	}
	add := func(g EnrollmentFailure) error {
		k := FailureKey(&g)
		changed[k] = true
		if cur, ok := byKey[k]; ok {
			cur.Fold(g)
			return nil
		}
		id, err := newID()
		if err != nil {
			return err
		}
		g.ID, g.Count, g.FirstAt = id, max(g.Count, 1), cmp.Or(g.FirstAt, g.At)
		byKey[k] = &g
		return nil
	}
	for _, g := range batch {
		if err := add(g); err != nil {
			return nil, nil, err
		}
	}
	var bySource []*EnrollmentFailure
	for _, f := range byKey {
		if f.Source != OtherSources {
			bySource = append(bySource, f)
		}
	}
	if over := len(bySource) - MaxSCEPFailures; over > 0 {
		slices.SortFunc(bySource, func(a, b *EnrollmentFailure) int { return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID)) })
		for _, f := range bySource[:over] {
			k := FailureKey(f)
			delete(byKey, k)
			delete(changed, k)
			del = append(del, f.ID)
			g := *f
			g.ID, g.Source = "", OtherSources
			if err := add(g); err != nil {
				return nil, nil, err
			}
		}
	}
	for k := range changed {
		put = append(put, *byKey[k])
	}
	slices.SortFunc(put, func(a, b EnrollmentFailure) int { return strings.Compare(a.ID, b.ID) })
	return put, del, nil
}
