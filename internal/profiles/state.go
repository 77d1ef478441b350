// Package profiles keeps configuration profiles applied: per channel and
// profile a state (pending, sent, verified, failed, removing, removed), and
// one reconciler that queues what a channel lacks (desired minus current)
// through the command service, from a bounded work queue of channels.
package profiles

import (
	"fmt"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// MaxAttempts: a refused install is retried once, then the state is failed.
const MaxAttempts = 2

// needsInstall says whether the reconciler must queue an install of
// version v (PayloadUUID uuid) for the state st (nil: never installed).
func needsInstall(st *storage.ChannelProfile, v int, uuid string) bool {
	switch {
	case st == nil:
		return true
	case st.Version != v || st.UUID != uuid:
		return true // a new version replaces the installed one
	case st.State == storage.ProfileRemoving || st.State == storage.ProfileRemoved:
		return true // back in scope
	case st.State == storage.ProfilePending && st.CommandUUID == "":
		return true // a retry or a resend asked for
	}
	return false
}

// needsRemoval says whether an out-of-scope state still needs RemoveProfile.
func needsRemoval(st *storage.ChannelProfile) bool {
	return st.State != storage.ProfileRemoved && st.State != storage.ProfileRemoving
}

// installResult moves st on the device's answer to its InstallProfile.
// Acknowledged keeps it sent until ProfileList shows it; an error is
// retried once (pending, no command: the reconciler re-sends it), then
// failed with the error chain kept.
func installResult(st *storage.ChannelProfile, r *storage.Result, now time.Time) (retry bool) {
	st.UpdatedAt = now
	switch r.Status {
	case storage.Acknowledged:
		st.State = storage.ProfileSent
		st.Errors = nil
	case storage.Error, storage.CommandFormatError:
		st.Errors = chain(r)
		if st.Attempts < MaxAttempts {
			st.State, st.CommandUUID = storage.ProfilePending, ""
			return true
		}
		st.State = storage.ProfileFailed
	}
	return false
}

// removeResult moves st on the answer to its RemoveProfile. A profile that
// is not there any more counts as removed.
func removeResult(st *storage.ChannelProfile, r *storage.Result, now time.Time) {
	st.UpdatedAt = now
	switch r.Status {
	case storage.Acknowledged:
		st.State, st.Errors = storage.ProfileRemoved, nil
	case storage.Error, storage.CommandFormatError:
		st.State, st.Errors = storage.ProfileFailed, chain(r)
	}
}

// Installed is one entry of a ProfileList answer.
type Installed struct {
	PayloadIdentifier string
	PayloadUUID       string
}

// listed moves st on a ProfileList answer. It returns true when the
// channel needs the reconciler (a profile to reinstall).
func listed(st *storage.ChannelProfile, have map[string]string, reinstall bool, now time.Time) (requeue, changed bool) {
	uuid, present := have[st.ProfileID]
	match := present && uuid == st.UUID
	switch st.State {
	case storage.ProfilePending, storage.ProfileSent:
		if match {
			st.State, st.Errors, st.UpdatedAt = storage.ProfileVerified, nil, now
			return false, true
		}
	case storage.ProfileVerified:
		if !match {
			st.UpdatedAt = now
			if reinstall {
				st.State, st.CommandUUID, st.Attempts = storage.ProfilePending, "", 0
				return true, true
			}
			st.State = storage.ProfileFailed
			st.Errors = []string{"not on the device any more: removed by the user or replaced"}
			return false, true
		}
	case storage.ProfileRemoving:
		if !present {
			st.State, st.UpdatedAt = storage.ProfileRemoved, now
			return false, true
		}
	}
	return false, false
}

func chain(r *storage.Result) []string {
	out := make([]string, 0, len(r.ErrorChain))
	for _, e := range r.ErrorChain {
		d := e.USEnglishDescription
		if d == "" {
			d = e.LocalizedDescription
		}
		out = append(out, fmt.Sprintf("%s %d: %s", e.ErrorDomain, e.ErrorCode, d))
	}
	if len(out) == 0 {
		out = append(out, string(r.Status))
	}
	return out
}
