package adminapi

// routes is the whole /v1 route table: every admin endpoint is one line
// here, and openapi.json describes exactly these (TestOpenAPIMatchesRoutes).
func (a *API) routes() []route {
	inv := func(a *API) bool { return a.inv != nil }
	enr := func(a *API) bool { return a.enroll != nil }
	dep := func(a *API) bool { return a.dep != nil }
	psh := func(a *API) bool { return a.push != nil }
	cmd := func(a *API) bool { return a.commands != nil }
	rel := func(a *API) bool { return a.releaser != nil }
	bak := func(a *API) bool { return a.backup != nil }
	ddm := func(a *API) bool { return a.ddm != nil }
	adm := func(a *API) bool { return a.admins != nil }
	prf := func(a *API) bool { return a.profiles != nil }
	dir := func(a *API) bool { return a.dir != nil }
	pol := func(a *API) bool { return a.policy != nil }
	cat := func(a *API) bool { return a.cats != nil }
	hst := func(a *API) bool { return a.history != nil }
	clg := func(a *API) bool { return a.cmdlog != nil }
	hook := func(a *API) bool { return a.webhooks != nil }
	trm := func(a *API) bool { return a.terms != nil }
	stg := func(a *API) bool { return a.stages != nil }
	// Each line: method, path, the access it needs (adminauth: read,
	// action, destructive, policy, manage admins), handler, wiring check.
	return []route{
		{"GET", "/v1/openapi.json", read, a.openAPI, nil},

		{"GET", "/v1/devices", read, a.listDevices, nil},
		{"GET", "/v1/devices/{id}", readOrReveal, a.showDevice, nil},
		{"GET", "/v1/devices/{id}/inventory", read, a.inv.Show, inv},
		{"GET", "/v1/devices/{id}/apps", read, a.inv.Apps, inv},
		{"GET", "/v1/devices/{id}/profiles", read, a.inv.Profiles, inv},
		{"GET", "/v1/devices/{id}/certificates", read, a.inv.Certificates, inv},
		{"GET", "/v1/devices/{id}/location", read, a.inv.Location, inv},
		{"POST", "/v1/devices/{id}/release", destroy, a.releaseDevice, rel},
		{"POST", "/v1/devices/{id}/actions/{action}", deviceAction, a.inv.Action, inv},
		{"GET", "/v1/inventory", read, a.inv.List, inv},
		{"GET", "/v1/inventory/counts", read, a.inv.Counts, inv},

		{"POST", "/v1/commands", policy, a.sendCommand, cmd},
		{"GET", "/v1/commands", read, a.listCommands, clg},
		{"GET", "/v1/commands.csv", read, a.exportCommands, clg},
		{"GET", "/v1/commands/{uuid}", read, a.showCommand, nil},
		{"DELETE", "/v1/commands/{uuid}", act, a.cancelCommand, nil},
		{"GET", "/v1/schema/commands", read, a.schema, nil},

		{"PUT", "/v1/push-certificate", policy, a.uploadPushCert, psh},
		{"GET", "/v1/push-certificate", read, a.showPushCert, psh},
		{"POST", "/v1/push", act, a.pushNow, psh},

		{"POST", "/v1/enrollment/invitations", policy, a.enroll.CreateInvitation, enr},
		{"GET", "/v1/enrollment/invitations", read, a.enroll.ListInvitations, enr},
		{"GET", "/v1/enrollment/profile", policy, a.enroll.AdminProfile, enr},
		{"GET", "/v1/enrollment/failures", read, a.enroll.ListFailures, enr},
		{"POST", "/v1/configurator/profiles", policy, a.enroll.CreateConfigurator, enr},
		{"GET", "/v1/configurator/profiles", read, a.enroll.ListConfigurators, enr},
		{"GET", "/v1/configurator/profiles/{id}", read, a.enroll.ShowConfigurator, enr},
		{"DELETE", "/v1/configurator/profiles/{id}", destroy, a.enroll.DeleteConfigurator, enr},
		{"GET", "/v1/configurator/profiles/{id}/mobileconfig", policy, a.enroll.DirectEnrollmentProfile, enr},
		{"GET", "/v1/configurator/profiles/{id}/downloads", read, a.enroll.ListDownloads, enr},
		{"DELETE", "/v1/configurator/profiles/{id}/downloads/{download}", destroy, a.enroll.RevokeDownload, enr},
		{"POST", "/v1/configurator/serials", policy, a.enroll.ImportSerials, enr},
		{"GET", "/v1/configurator/serials", read, a.enroll.ListSerials, enr},
		{"POST", "/v1/configurator/serials/assign", policy, a.enroll.AssignSerials, enr},
		{"GET", "/v1/certificates", read, a.enroll.ListCerts, enr},
		{"POST", "/v1/certificates/{serial}/revoke", destroy, a.enroll.RevokeCert, enr},

		{"GET", "/v1/dep/public-key", read, a.depPublicKey, dep},
		{"GET", "/v1/dep/tokens", read, a.depListTokens, dep},
		{"POST", "/v1/dep/tokens", policy, a.depAddToken, dep},
		{"GET", "/v1/dep/tokens/{id}", read, a.depGetToken, dep},
		{"PUT", "/v1/dep/tokens/{id}", policy, a.depRenewToken, dep},
		{"DELETE", "/v1/dep/tokens/{id}", destroy, a.depDeleteToken, dep},
		{"POST", "/v1/dep/tokens/{id}/sync", act, a.depSync, dep},
		{"GET", "/v1/dep/tokens/{id}/profiles", read, a.depListProfiles, dep},
		{"POST", "/v1/dep/tokens/{id}/profiles", policy, a.depCreateProfile, dep},
		{"GET", "/v1/dep/tokens/{id}/profiles/{pid}", read, a.depGetProfile, dep},
		{"PUT", "/v1/dep/tokens/{id}/profiles/{pid}", policy, a.depUpdateProfile, dep},
		{"DELETE", "/v1/dep/tokens/{id}/profiles/{pid}", destroy, a.depDeleteProfile, dep},
		{"POST", "/v1/dep/tokens/{id}/profiles/{pid}/devices", policy, a.depAssignProfile, dep},
		{"GET", "/v1/dep/devices", read, a.depListDevices, dep},
		{"DELETE", "/v1/dep/devices/{serial}", destroy, a.depDeleteDevice, dep},

		{"GET", "/v1/backup", manage, a.getBackup, bak},

		{"GET", "/v1/admins", read, a.listAdmins, adm},
		{"POST", "/v1/admins", manage, a.createAdmin, adm},
		{"GET", "/v1/admins/{username}", read, a.showAdmin, adm},
		{"PATCH", "/v1/admins/{username}", manage, a.updateAdmin, adm},
		{"DELETE", "/v1/admins/{username}", manage, a.deleteAdmin, adm},
		{"DELETE", "/v1/admins/{username}/two-factor", manage, a.resetTwoFactor, adm},
		{"GET", "/v1/admins/{username}/tokens", manage, a.listAdminTokens, adm},
		{"POST", "/v1/admins/{username}/tokens", manage, a.createAdminToken, adm},
		{"DELETE", "/v1/admins/{username}/tokens/{id}", manage, a.revokeAdminToken, adm},
		{"GET", "/v1/tokens", read, a.listOwnTokens, adm},
		{"POST", "/v1/tokens", read, a.createOwnToken, adm},
		{"DELETE", "/v1/tokens/{id}", read, a.revokeOwnToken, adm},
		{"GET", "/v1/audit", read, a.listAudit, adm},
		{"GET", "/v1/audit.csv", read, a.exportAudit, adm},

		{"POST", "/v1/profiles", policy, a.profiles.Create, prf},
		{"GET", "/v1/profiles", read, a.profiles.List, prf},
		{"GET", "/v1/profiles/{id}", read, a.profiles.Show, prf},
		{"PUT", "/v1/profiles/{id}", policy, a.profiles.NewVersion, prf},
		{"PUT", "/v1/profiles/{id}/scope", policy, a.profiles.SetScope, prf},
		{"GET", "/v1/profiles/{id}/status", read, a.profiles.Status, prf},
		{"POST", "/v1/profiles/{id}/resend", act, a.profiles.Resend, prf},
		{"GET", "/v1/profiles/{id}/versions", read, a.profiles.Versions, prf},
		{"GET", "/v1/devices/{id}/profile-states", read, a.deviceProfileStates, prf},
		{"GET", "/v1/users", read, a.listUsers, dir},
		{"POST", "/v1/users", policy, a.createUser, dir},
		{"POST", "/v1/users/import", policy, a.importUsers, dir},
		{"GET", "/v1/users/{username}", read, a.showUser, dir},
		{"PATCH", "/v1/users/{username}", policy, a.updateUser, dir},
		{"GET", "/v1/groups", read, a.listGroups, dir},
		{"POST", "/v1/groups", policy, a.createGroup, dir},
		{"GET", "/v1/groups/{name}", read, a.showGroup, dir},
		{"DELETE", "/v1/groups/{name}", destroy, a.deleteGroup, dir},
		{"GET", "/v1/groups/{name}/members", read, a.listMembers, dir},
		{"POST", "/v1/groups/{name}/members", policy, a.addMembers, dir},
		{"POST", "/v1/groups/{name}/members/import", policy, a.importMembers, dir},
		{"DELETE", "/v1/groups/{name}/members/{username}", policy, a.removeMember, dir},
		{"PUT", "/v1/devices/{id}/user", policy, a.setPrimaryUser, dir},
		{"GET", "/v1/declarations", read, a.listDeclarations, ddm},
		{"POST", "/v1/declarations", policy, a.putDeclaration, ddm},
		{"GET", "/v1/declarations/{id}", read, a.showDeclaration, ddm},
		{"DELETE", "/v1/declarations/{id}", policy, a.deleteDeclaration, ddm},
		{"GET", "/v1/declarations/{id}/status", read, a.declarationStatus, ddm},
		{"GET", "/v1/declaration-sets", read, a.listDeclarationSets, ddm},
		{"POST", "/v1/declaration-sets", policy, a.putDeclarationSet, ddm},
		{"GET", "/v1/declaration-sets/{name}", read, a.showDeclarationSet, ddm},
		{"DELETE", "/v1/declaration-sets/{name}", policy, a.deleteDeclarationSet, ddm},
		{"GET", "/v1/devices/{id}/declarations", read, a.deviceDeclarations, ddm},
		{"GET", "/v1/software-updates", read, a.softwareUpdates, ddm},
		{"GET", "/v1/enrollment/failures.csv", read, a.enroll.ListFailures, enr},
		{"GET", "/v1/enrollment/summary", read, a.summary, pol},
		{"GET", "/v1/enrollment/policies", read, a.listPolicies, pol},
		{"POST", "/v1/enrollment/policies", policy, a.savePolicy, pol},
		{"GET", "/v1/enrollment/policies/{id}", read, a.showPolicy, pol},
		{"PUT", "/v1/enrollment/policies/{id}", policy, a.savePolicy, pol},
		{"DELETE", "/v1/enrollment/policies/{id}", destroy, a.deletePolicy, pol},
		{"POST", "/v1/enrollment/decide", read, a.decide, pol},
		{"GET", "/v1/corporate-identifiers", read, a.listCorporateIDs, pol},
		{"POST", "/v1/corporate-identifiers", policy, a.addCorporateIDs, pol},
		{"POST", "/v1/corporate-identifiers/import", policy, a.importCorporateIDs, pol},
		{"DELETE", "/v1/corporate-identifiers/{kind}/{value}", destroy, a.deleteCorporateID, pol},
		{"GET", "/v1/users/{username}/limit", read, a.userLimit, pol},
		{"PUT", "/v1/users/{username}/dem", policy, a.setDEM, pol},
		{"PUT", "/v1/devices/{id}/ownership", policy, a.setOwnership, pol},
		{"GET", "/v1/categories", read, a.listCategories, cat},
		{"POST", "/v1/categories", policy, a.createCategory, cat},
		{"GET", "/v1/categories/{name}", read, a.showCategory, cat},
		{"PATCH", "/v1/categories/{name}", policy, a.updateCategory, cat},
		{"DELETE", "/v1/categories/{name}", destroy, a.deleteCategory, cat},
		{"PUT", "/v1/devices/{id}/category", policy, a.setDeviceCategory, cat},
		{"GET", "/v1/devices/{id}/commands", read, a.deviceCommands, hst},
		{"GET", "/v1/webhooks", read, a.webhooks.List, hook},
		{"POST", "/v1/webhooks", policy, a.webhooks.Create, hook},
		{"GET", "/v1/webhooks/events", read, a.webhooks.Events, hook},
		{"POST", "/v1/webhooks/events/{id}/replay", policy, a.webhooks.Replay, hook},
		{"GET", "/v1/webhooks/{id}", read, a.webhooks.Show, hook},
		{"PATCH", "/v1/webhooks/{id}", policy, a.webhooks.Update, hook},
		{"DELETE", "/v1/webhooks/{id}", policy, a.webhooks.Delete, hook},
		{"GET", "/v1/webhooks/{id}/deliveries", read, a.webhooks.Deliveries, hook},
		{"POST", "/v1/webhooks/{id}/replay", policy, a.webhooks.ReplayDead, hook},
		{"GET", "/v1/terms", read, a.listTerms, trm},
		{"POST", "/v1/terms", policy, a.createTerms, trm},
		{"GET", "/v1/terms/acceptances", read, a.listAcceptances, trm},
		{"GET", "/v1/terms/acceptances.csv", read, a.exportAcceptances, trm},
		{"GET", "/v1/terms/{name}", read, a.showTerms, trm},
		{"PUT", "/v1/terms/{name}", policy, a.updateTerms, trm},
		{"DELETE", "/v1/terms/{name}", destroy, a.deleteTerms, trm},
		{"GET", "/v1/enrollment/incomplete", read, a.listIncomplete, stg},
		{"GET", "/v1/enrollment/incomplete.csv", read, a.exportIncomplete, stg},
		{"GET", "/v1/schema/declarations", read, a.declarationSchema, nil},
		{"PUT", "/v1/declaration-sets/{name}/scope", policy, a.scopeDeclarationSet, ddm},
	}
}
