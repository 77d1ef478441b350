// Package storagetest is the conformance suite every storage backend must
// pass unchanged. A backend's test calls Run with an opener that returns a
// fresh, empty store on real storage; the suite runs one subtest per role
// (MDM, Push, Counts, Certs, Enroll, DEP, Inventory, Directory, Admin, Profiles,
// Declarations, InventorySearch, History, CommandLog, CommandLogScan, WebSessions, Categories, Webhooks,
// Policy, Terms, EnrollmentSessions), and each of their
// cases opens its own store.
package storagetest

import (
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// Run checks every documented contract of storage.Store. open must return a
// fresh, empty store and arrange its own cleanup (t.Cleanup), closing it.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	mdm := func(t *testing.T) storage.MDMStore { return open(t) }
	t.Run("MDM", func(t *testing.T) { runMDM(t, mdm) })
	t.Run("Push", func(t *testing.T) { runPush(t, mdm) })
	t.Run("Counts", func(t *testing.T) { runCounts(t, mdm) })
	t.Run("Certs", func(t *testing.T) {
		runCerts(t, func(t *testing.T) storage.CertStore { return open(t) })
	})
	t.Run("Enroll", func(t *testing.T) {
		runEnroll(t, func(t *testing.T) storage.EnrollStore { return open(t) })
	})
	t.Run("DEP", func(t *testing.T) {
		runDEP(t, func(t *testing.T) storage.DEPStore { return open(t) })
	})
	t.Run("Inventory", func(t *testing.T) {
		runInventory(t, func(t *testing.T) storage.InventoryStore { return open(t) })
	})
	t.Run("ResultEffect", func(t *testing.T) { runResultEffect(t, open) })
	t.Run("Directory", func(t *testing.T) {
		runDirectory(t, func(t *testing.T) storage.DirectoryStore { return open(t) })
	})
	t.Run("Admin", func(t *testing.T) {
		runAdmin(t, func(t *testing.T) storage.AdminStore { return open(t) })
	})
	t.Run("Profiles", func(t *testing.T) {
		runProfiles(t, func(t *testing.T) storage.ProfileStore { return open(t) })
	})
	t.Run("Declarations", func(t *testing.T) {
		runDeclarations(t, func(t *testing.T) storage.DeclarationStore { return open(t) })
	})
	t.Run("FleetCounts", func(t *testing.T) { runFleetCounts(t, open(t)) })
	t.Run("InventorySearch", func(t *testing.T) {
		runInventorySearch(t, func(t *testing.T) storage.InventoryStore { return open(t) })
	})
	t.Run("History", func(t *testing.T) {
		runHistory(t, func(t *testing.T) historyStore { return open(t) })
	})
	t.Run("CommandLog", func(t *testing.T) {
		runCommandLog(t, func(t *testing.T) commandLogStore { return open(t) })
	})
	t.Run("CommandLogScan", func(t *testing.T) {
		runCommandLogScan(t, func(t *testing.T) commandLogStore { return open(t) })
	})
	t.Run("WebSessions", func(t *testing.T) {
		runWebSessions(t, func(t *testing.T) storage.WebSessionStore { return open(t) })
	})
	t.Run("Categories", func(t *testing.T) {
		runCategories(t, func(t *testing.T) storage.CategoryStore { return open(t) })
	})
	t.Run("Webhooks", func(t *testing.T) {
		runWebhooks(t, func(t *testing.T) storage.WebhookStore { return open(t) })
	})
	t.Run("Policy", func(t *testing.T) {
		runPolicy(t, func(t *testing.T) policyStore { return open(t) })
	})
	t.Run("Terms", func(t *testing.T) {
		runTerms(t, func(t *testing.T) termsStore { return open(t) })
	})
	t.Run("EnrollmentSessions", func(t *testing.T) {
		runEnrollmentSessions(t, func(t *testing.T) storage.EnrollmentSessionStore { return open(t) })
	})
}
