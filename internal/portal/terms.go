package portal

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/storage"
)

// Stages of the failure records the portal writes.
const (
	failureStagePortal = "portal" // at the hand-out of a profile
	failureStageTerms  = "terms"  // at the terms page (declined)
)

// recordFailure records a refused portal or Setup Assistant enrollment,
// with what the flow knows of the device; the caller sets the reason.
func (p *Portal) recordFailure(r *http.Request, f Flow, fail *storage.EnrollmentFailure) {
	if p.cfg.Failures == nil {
		return
	}
	fail.At, fail.Method, fail.Platform = p.now(), storage.KindPortal, f.Platform
	if d := f.Device; d != nil {
		fail.Method, fail.UDID, fail.Serial, fail.OSVersion = storage.KindADE, d.UDID, d.Serial, d.OSVersion
	}
	if err := p.cfg.Failures.RecordEnrollmentFailure(r.Context(), fail); err != nil {
		p.log.Warn("portal: record a refusal", "code", fail.Code, "err", err)
	}
}

// termsTitles names documents for a page: "Title (version n), ...".
func termsTitles(docs []Document) string {
	names := make([]string, len(docs))
	for i, d := range docs {
		names[i] = fmt.Sprintf("%s (version %d)", d.Title, d.Version)
	}
	return strings.Join(names, ", ")
}

// maxRecordedTerms bounds the documents a failure record names.
const maxRecordedTerms = 5

// termsNames names documents for a failure record, bounded: the rule is
// the documents ("aup,nda"), the reason adds their versions.
func termsNames(docs []Document) (rule, versions string) {
	var names, vs []string
	for i, d := range docs {
		if i == maxRecordedTerms {
			vs = append(vs, fmt.Sprintf("and %d more", len(docs)-i))
			break
		}
		names = append(names, d.Name)
		vs = append(vs, fmt.Sprintf("%s version %d", d.Name, d.Version))
	}
	return strings.Join(names, ","), strings.Join(vs, ", ")
}

// termsAccepted asks, as a profile is about to be made, whether the user
// has accepted every terms document assigned to them in its latest version
// that requires acceptance. The steps before check it too, but a post can
// skip them, and an admin can issue a version that requires re-acceptance
// between the terms page and the download. A refusal is recorded
// (terms_not_accepted) and answered with the refusal page, which links back
// to the terms.
func (p *Portal) termsAccepted(w http.ResponseWriter, r *http.Request, ws *storage.WebSession, f Flow) bool {
	pending, err := p.pendingTerms(r, ws.Subject)
	if err != nil {
		p.internal(w, r, err)
		return false
	}
	if len(pending) == 0 {
		return true
	}
	msg := "You have not accepted the terms and conditions: " + termsTitles(pending) + "."
	rule, versions := termsNames(pending)
	p.log.Info("portal: profile refused, terms not accepted", "username", ws.Subject, "platform", f.Platform,
		"setup_assistant", f.Device != nil, "terms", len(pending))
	p.recordFailure(r, f, &storage.EnrollmentFailure{Reason: "terms not accepted: " + versions,
		Code: string(policy.TermsNotAccepted), Stage: failureStagePortal, User: ws.Subject, Rule: rule})
	p.flowMessage(w, r, f, http.StatusForbidden, view{Heading: "This device cannot be enrolled", Message: msg,
		Hint: "Accept the terms first, then get the enrollment profile.", Link: "/portal/terms", LinkText: "Read and accept the terms"})
	return false
}

// declineTerms serves the Decline button of the terms page: the
// enrollment stops (stage terms_declined, failure terms_not_accepted) and
// the page says what to do. Nothing is accepted, so no profile is made
// until the user comes back and accepts.
func (p *Portal) declineTerms(w http.ResponseWriter, r *http.Request, ws *storage.WebSession, f Flow) {
	pending, err := p.pendingTerms(r, ws.Subject)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if len(pending) == 0 {
		p.next(w, r, ws, f) // nothing left to decline
		return
	}
	p.record(r, f, ws.Subject, StageTermsDeclined)
	rule, versions := termsNames(pending)
	p.recordFailure(r, f, &storage.EnrollmentFailure{Reason: "declined: " + versions,
		Code: string(policy.TermsNotAccepted), Stage: failureStageTerms, User: ws.Subject, Rule: rule})
	p.log.Info("portal: terms declined", "username", ws.Subject, "platform", f.Platform, "setup_assistant", f.Device != nil)
	p.flowMessage(w, r, f, http.StatusOK, view{Heading: "Enrollment stopped",
		Message: "You declined the terms and conditions, so this device was not enrolled and no enrollment profile was made.",
		Hint:    "Questions about the terms? Contact your IT team. To enroll this device, come back and accept them.",
		Link:    "/portal/terms", LinkText: "Read the terms again"})
}
