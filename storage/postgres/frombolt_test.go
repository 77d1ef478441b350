package postgres_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// fillBolt writes records of every kind into a bbolt store through its
// contracts and returns the command UUIDs.
func fillBolt(t *testing.T, s storage.Store) []string {
	t.Helper()
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"00008030-001A35E11E88802E", "D2"} {
		must(s.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
			ID: id, DeviceID: id, Type: storage.Device, EnrolledAt: at, CertHash: "cert-" + id,
			Token: []byte{1, 2, 3}, PushMagic: "magic", BootstrapTokenSealed: []byte("sealed-bootstrap"),
		}}))
	}
	user := "D2" + mdm.ChannelSeparator + "U1"
	must(s.UpdateEnrollment(ctx, user, &storage.Enrollment{ID: user, DeviceID: "D2", Type: storage.User, Enrolled: true}, func(*storage.Enrollment) error { return nil }))
	var uuids []string
	for i, name := range []string{"c-ack", "c-notnow", "c-queued", "c-user"} {
		raw, err := mdm.EncodeCommand(name, mdm.CommandPayload{"RequestType": "ProfileList"})
		must(err)
		chans := []string{"D2"}
		if name == "c-user" {
			chans = []string{user}
		}
		must(s.Enqueue(ctx, &storage.Command{UUID: name, RequestType: "ProfileList", Raw: raw, CreatedAt: at.Add(time.Duration(i))}, chans))
		uuids = append(uuids, name)
	}
	for _, st := range []storage.TargetStatus{storage.Acknowledged, storage.NotNow} {
		cmd, err := s.Next(ctx, "D2")
		must(err)
		_, err = s.StoreResult(ctx, &storage.Result{CommandUUID: cmd.UUID, ChannelID: "D2", Status: st, Raw: []byte("<plist/>"), At: at})
		must(err)
	}
	must(s.PutSetting(ctx, "push.key", []byte("sealed-push-key")))
	must(s.PutCert(ctx, &storage.CertRecord{Hash: "h1", Serial: "0a", NotAfter: at, Authorization: storage.CertAuthorization{Kind: "profile"}}))
	must(s.PutChallenge(ctx, &storage.Challenge{ID: "ch1", Hash: []byte("hash"), Kind: "profile", Ref: "p1", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}))
	must(s.PutInvitation(ctx, &storage.Invitation{ID: "inv1", TokenHash: "tokhash", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}))
	must(s.PutConfiguratorProfile(ctx, &storage.ConfiguratorProfile{ID: "p1", Name: "Lab", CreatedAt: at}))
	_, err := s.ImportSerials(ctx, []storage.SerialAssignment{{Serial: "SN1", ProfileID: "p1", AddedAt: at}}, false)
	must(err)
	must(s.PutDeviceReport(ctx, &storage.DeviceReport{ChannelID: "D2", Kind: "DeviceInformation", CommandUUID: "c-ack", At: at, Raw: []byte("<plist/>")},
		func(inv *storage.DeviceInventory) error { inv.Platform = "iOS"; return nil }))
	must(s.PutDEPToken(ctx, storage.DEPToken{ID: "tok1", Name: "Main", SealedCredentials: []byte("sealed-oauth"), Status: storage.DEPTokenOK, CreatedAt: at}))
	_, err = s.SaveDEPPage(ctx, []storage.DEPDevice{{Serial: "SN1", TokenID: "tok1", ProfileUUID: "apple-1"}}, storage.DEPSyncState{TokenID: "tok1", Cursor: "cur"}, at)
	must(err)
	must(s.CreateDEPProfile(ctx, storage.DEPProfile{ID: "dp1", TokenID: "tok1", Name: "ADE", CreatedAt: at}, 10))
	must(s.RecordEnrollmentFailure(ctx, &storage.EnrollmentFailure{At: at, UDID: "U1", Reason: "refused"}))
	must(s.RecordSCEPFailures(ctx, []storage.EnrollmentFailure{{At: at, Code: "challenge_used", Reason: "used", Source: "192.0.2.1", Count: 2}}))
	must(s.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann", PasswordHash: "$argon2id$x", CreatedAt: at}, {Username: "bob", CreatedAt: at}}))
	must(s.CreateGroup(ctx, &storage.Group{Name: "sales", CreatedAt: at}))
	must(s.AddGroupMembers(ctx, "sales", []string{"ann", "bob"}))
	must(s.SetPrimaryUser(ctx, "D2", "ann"))
	must(s.PutEnrollmentPolicy(ctx, &storage.EnrollmentPolicy{ID: "lim1", Kind: storage.PolicyLimit, Name: "Sales", Priority: 1,
		Groups: []string{"sales"}, DeviceLimit: 3, CreatedAt: at, UpdatedAt: at}))
	_, err = s.ImportCorporateIdentifiers(ctx, []storage.CorporateIdentifier{{Kind: storage.IdentifierSerial, Value: "C02X", Details: "lab", AddedAt: at}}, false)
	must(err)
	must(s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: "D9", Username: "bob", DEM: true, Limit: 1000}))
	must(s.CreateCategory(ctx, &storage.Category{Name: "kiosk", Description: "Front desk", Group: "sales", CreatedAt: at, UpdatedAt: at}))
	must(s.SetDeviceCategory(ctx, "D2", "kiosk"))
	must(s.CreateTerms(ctx, &storage.TermsDocument{Name: "aup", Title: "AUP", Text: "v1", Version: 1, ReacceptFrom: 1, AllUsers: true, CreatedAt: at}))
	must(s.PutTermsVersion(ctx, &storage.TermsDocument{Name: "aup", Title: "AUP", Text: "v2", Version: 2, ReacceptFrom: 2, RequireReacceptance: true, Groups: []string{"sales"}, CreatedAt: at}))
	must(s.AcceptTerms(ctx, &storage.TermsAcceptance{Document: "aup", Username: "ann", Version: 1, AcceptedAt: at, Address: "192.0.2.1", UserAgent: "Safari"}))
	must(s.AcceptTerms(ctx, &storage.TermsAcceptance{Document: "aup", Username: "ann", Version: 2, AcceptedAt: at}))
	_, err = s.RecordEnrollmentStage(ctx, "sess1", storage.EnrollmentStage{Stage: "signin_shown", At: at}, storage.EnrollmentFacts{Method: "portal", Platform: "iOS"})
	must(err)
	_, err = s.RecordEnrollmentStage(ctx, "sess1", storage.EnrollmentStage{Stage: "signed_in", At: at.Add(time.Minute)}, storage.EnrollmentFacts{Username: "ann"})
	must(err)
	must(s.CreateAdmin(ctx, &storage.AdminAccount{Username: "alice", Role: "owner", PasswordHash: "$argon2id$h", CreatedAt: at}))
	must(s.CreateAPIToken(ctx, &storage.APIToken{ID: "t1", Admin: "alice", Role: "helpdesk", Hash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: at}))
	must(s.AppendAudit(ctx, &storage.AuditEntry{Time: at, Actor: "alice/token:t1", Source: "127.0.0.1", Action: "POST /v1/push", Status: 200, Result: "ok"}))
	prof := &storage.Profile{ID: "com.example.wifi", Version: 1, UUID: "P1", CreatedAt: at}
	must(s.PutProfile(ctx, prof, &storage.ProfileVersion{ProfileID: prof.ID, Version: 1, UUID: "P1", Data: []byte("<plist/>")}))
	must(s.PutChannelProfiles(ctx, []storage.ChannelProfile{{ProfileID: prof.ID, ChannelID: "D2", Version: 1, State: storage.ProfileVerified}}))
	must(s.CreateWebSession(ctx, &storage.WebSession{Kind: "console", IDHash: []byte("0123456789abcdef0123456789abcdef"), Subject: "alice",
		CSRF: "c", Data: map[string]string{"k": "v"}, CreatedAt: at, IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(8 * time.Hour)}))
	return uuids
}

// snapshot reads everything the contracts can list, as JSON, to compare two
// stores record by record.
func snapshot(t *testing.T, s storage.Store, uuids []string) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	put := func(name string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := json.Marshal(v)
		out[name] = string(b)
	}
	es, err := s.ListEnrollments(ctx, "", 0)
	put("enrollments", es, err)
	for _, e := range es {
		n, err := s.QueueDepth(ctx, e.ID)
		put("depth "+e.ID, n, err)
		dev, err := s.DeviceForCert(ctx, e.CertHash)
		if e.CertHash != "" {
			put("cert binding "+e.ID, dev, err)
		}
	}
	lower, err := s.Enrollment(ctx, "00008030-001a35e11e88802e")
	put("folded lookup", lower.ID, err)
	for _, u := range uuids {
		cmd, targets, err := s.Command(ctx, u)
		put("command "+u, []any{cmd, cmd.Raw, targets}, err)
		rs, err := s.Results(ctx, u)
		put("results "+u, rs, err)
	}
	q, n, err := s.Counts(ctx)
	put("counts", []int{q, n}, err)
	v, err := s.Setting(ctx, "push.key")
	put("setting", v, err)
	certs, err := s.ListCerts(ctx, "", 0)
	put("certs", certs, err)
	ch, err := s.ChallengesFor(ctx, "p1")
	put("challenges", ch, err)
	invs, err := s.ListInvitations(ctx, "", 0)
	put("invitations", invs, err)
	profs, err := s.ListConfiguratorProfiles(ctx)
	put("configurator profiles", profs, err)
	serials, err := s.ListSerials(ctx, "p1", "", 0)
	put("serials", serials, err)
	inv, err := s.ListInventory(ctx, "", 0)
	put("inventory", inv, err)
	rep, err := s.DeviceReport(ctx, "D2", "DeviceInformation")
	put("report", rep, err)
	toks, err := s.DEPTokens(ctx)
	put("dep tokens", toks, err)
	st, err := s.DEPSyncState(ctx, "tok1")
	put("dep sync", st, err)
	devs, err := s.DEPDevices(ctx, storage.DEPDeviceFilter{TokenID: "tok1"})
	put("dep devices", devs, err)
	dps, err := s.DEPProfiles(ctx, "tok1")
	put("dep profiles", dps, err)
	fails, err := s.ListEnrollmentFailures(ctx, "", 0)
	put("enrollment failures", fails, err)
	scepFails, err := s.ListSCEPFailures(ctx, "", 0)
	put("SCEP failures", scepFails, err)
	users, err := s.ListUsers(ctx, "", 0)
	put("users", users, err)
	groups, err := s.ListGroups(ctx, "", 0)
	put("groups", groups, err)
	members, err := s.GroupMembers(ctx, "sales", "", 0)
	put("members", members, err)
	ug, err := s.UserGroups(ctx, "bob")
	put("user groups", ug, err)
	pu, err := s.PrimaryUser(ctx, "D2")
	put("primary user", pu, err)
	ud, err := s.UserDevices(ctx, "ann")
	put("user devices", ud, err)
	admins, err := s.ListAdmins(ctx)
	put("admins", admins, err)
	cats, err := s.ListCategories(ctx, "", 0)
	put("categories", cats, err)
	dc, err := s.DeviceCategory(ctx, "D2")
	put("device category", dc, err)
	cd, err := s.CategoryDevices(ctx, "kiosk", "", 0)
	put("category devices", cd, err)
	tv, err := s.ListTermsVersions(ctx, "aup")
	put("terms versions", tv, err)
	tl, err := s.ListTerms(ctx, "", 0)
	put("terms", tl, err)
	ta, err := s.ListTermsAcceptances(ctx, storage.TermsAcceptanceFilter{Username: "ann"}, "", 0)
	put("terms acceptances", ta, err)
	tb, err := s.ListTermsAcceptances(ctx, storage.TermsAcceptanceFilter{}, "aup/ann/0000000001", 0)
	put("terms acceptances after", tb, err)
	sess, err := s.ListEnrollmentSessions(ctx, time.Time{}, "", 0)
	put("enrollment sessions", sess, err)
	tok, err := s.APITokenByHash(ctx, []byte("0123456789abcdef0123456789abcdef"))
	put("api token", tok, err)
	audit, err := s.ListAudit(ctx, storage.AuditFilter{Actor: "alice"}, "", 0)
	put("audit", audit, err)
	pols, err := s.EnrollmentPolicies(ctx)
	put("enrollment policies", pols, err)
	cids, err := s.ListCorporateIdentifiers(ctx, "", "", "", 0)
	put("corporate identifiers", cids, err)
	dem, err := s.DEMDevices(ctx, "bob")
	put("dem devices", dem, err)
	ws, err := s.GetWebSession(ctx, "console", []byte("0123456789abcdef0123456789abcdef"))
	put("web session", ws, err)
	return out
}

// TestCopyFromBolt migrates a bbolt database holding every kind of record
// and checks that PostgreSQL then answers every read the same way, that the
// queues carry on in order, and that a non-empty target is refused unless
// overwriting is asked for.
func TestCopyFromBolt(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "orchard.db")
	src, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	uuids := fillBolt(t, src)
	want := snapshot(t, src, uuids)
	src.Close()

	dst := open(t)
	counts, err := dst.CopyFromBolt(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range counts {
		if c.Source != c.Copied {
			t.Errorf("%s: read %d, copied %d", c.Table, c.Source, c.Copied)
		}
		total += c.Copied
	}
	if total == 0 {
		t.Fatal("nothing copied")
	}
	got := snapshot(t, dst, uuids)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s after migration:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if sts, err := dst.ChannelProfiles(ctx, "D2"); err != nil || len(sts) != 1 || sts[0].State != storage.ProfileVerified {
		t.Errorf("profile states after the copy = %+v, %v", sts, err)
	}
	if v, err := dst.GetProfileVersion(ctx, "com.example.wifi", 1); err != nil || string(v.Data) != "<plist/>" {
		t.Errorf("profile version after the copy = %+v, %v", v, err)
	}
	if v, _ := dst.Setting(ctx, "push.key"); !bytes.Equal(v, []byte("sealed-push-key")) {
		t.Errorf("sealed setting = %q, want the sealed bytes as they were", v)
	}

	// The queue carries on: the queued command is next, a new one after it.
	raw, _ := mdm.EncodeCommand("c-new", mdm.CommandPayload{"RequestType": "ProfileList"})
	if err := dst.Enqueue(ctx, &storage.Command{UUID: "c-new", RequestType: "ProfileList", Raw: raw, CreatedAt: time.Now()}, []string{"D2"}); err != nil {
		t.Fatal(err)
	}
	for _, wantUUID := range []string{"c-queued", "c-new"} {
		cmd, err := dst.Next(ctx, "D2")
		if err != nil || cmd == nil || cmd.UUID != wantUUID {
			t.Fatalf("Next = %v, %v; want %s", cmd, err, wantUUID)
		}
		if _, err := dst.StoreResult(ctx, &storage.Result{CommandUUID: cmd.UUID, ChannelID: "D2", Status: storage.Acknowledged, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.Undefer(ctx, "D2"); err != nil {
		t.Fatal(err)
	}
	if cmd, err := dst.Next(ctx, "D2"); err != nil || cmd == nil || cmd.UUID != "c-notnow" {
		t.Errorf("after Undefer Next = %v, %v; want the NotNow'd c-notnow", cmd, err)
	}
	// The failure record carries on after the migrated one.
	f := &storage.EnrollmentFailure{At: time.Now(), Reason: "later"}
	if err := dst.RecordEnrollmentFailure(ctx, f); err != nil {
		t.Fatal(err)
	}
	if all, _ := dst.ListEnrollmentFailures(ctx, "", 0); len(all) != 2 || all[1].ID != f.ID || f.ID <= all[0].ID {
		t.Errorf("failures after migration = %+v; want the new one last", all)
	}
	// So do the SCEP aggregates: the same source grows, a new one comes after.
	if err := dst.RecordSCEPFailures(ctx, []storage.EnrollmentFailure{{At: time.Now(), Code: "challenge_used", Reason: "used", Source: "192.0.2.1"},
		{At: time.Now(), Code: "challenge_used", Reason: "used", Source: "192.0.2.2"}}); err != nil {
		t.Fatal(err)
	}
	if all, _ := dst.ListSCEPFailures(ctx, "", 0); len(all) != 2 || all[0].Count != 3 || all[1].ID <= all[0].ID {
		t.Errorf("SCEP failures after migration = %+v; want 192.0.2.1 grown to 3, 192.0.2.2 after it", all)
	}
	// A single-use invitation migrated unspent can be spent once.
	if _, err := dst.SpendInvitation(ctx, "tokhash", time.Now(), &storage.Challenge{ID: "ch2", Hash: []byte("x"), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Errorf("spend migrated invitation: %v", err)
	}

	if _, err := dst.CopyFromBolt(ctx, path, false); !errors.Is(err, postgres.ErrNotEmpty) {
		t.Errorf("second copy into a non-empty database: %v, want ErrNotEmpty", err)
	}
	if _, err := dst.CopyFromBolt(ctx, path, true); err != nil {
		t.Fatalf("copy with overwrite: %v", err)
	}
	got = snapshot(t, dst, uuids)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s after an overwriting migration:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if _, _, err := dst.Command(ctx, "c-new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("overwrite kept a record bbolt does not have: %v", err)
	}
}
