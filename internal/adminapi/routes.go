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
	return []route{
		{"GET", "/v1/openapi.json", a.openAPI, nil},

		{"GET", "/v1/devices", a.listDevices, nil},
		{"GET", "/v1/devices/{id}", a.showDevice, nil},
		{"GET", "/v1/devices/{id}/inventory", a.inv.Show, inv},
		{"GET", "/v1/devices/{id}/apps", a.inv.Apps, inv},
		{"GET", "/v1/devices/{id}/profiles", a.inv.Profiles, inv},
		{"GET", "/v1/devices/{id}/certificates", a.inv.Certificates, inv},
		{"GET", "/v1/devices/{id}/location", a.inv.Location, inv},
		{"POST", "/v1/devices/{id}/release", a.releaseDevice, rel},
		{"POST", "/v1/devices/{id}/actions/{action}", a.inv.Action, inv},
		{"GET", "/v1/inventory", a.inv.List, inv},

		{"POST", "/v1/commands", a.sendCommand, cmd},
		{"GET", "/v1/commands/{uuid}", a.showCommand, nil},
		{"DELETE", "/v1/commands/{uuid}", a.cancelCommand, nil},
		{"GET", "/v1/schema/commands", a.schema, nil},

		{"PUT", "/v1/push-certificate", a.uploadPushCert, psh},
		{"GET", "/v1/push-certificate", a.showPushCert, psh},
		{"POST", "/v1/push", a.pushNow, psh},

		{"POST", "/v1/enrollment/invitations", a.enroll.CreateInvitation, enr},
		{"GET", "/v1/enrollment/invitations", a.enroll.ListInvitations, enr},
		{"GET", "/v1/enrollment/profile", a.enroll.AdminProfile, enr},
		{"GET", "/v1/enrollment/failures", a.enroll.ListFailures, enr},
		{"POST", "/v1/configurator/profiles", a.enroll.CreateConfigurator, enr},
		{"GET", "/v1/configurator/profiles", a.enroll.ListConfigurators, enr},
		{"GET", "/v1/configurator/profiles/{id}", a.enroll.ShowConfigurator, enr},
		{"DELETE", "/v1/configurator/profiles/{id}", a.enroll.DeleteConfigurator, enr},
		{"GET", "/v1/configurator/profiles/{id}/mobileconfig", a.enroll.DirectEnrollmentProfile, enr},
		{"GET", "/v1/configurator/profiles/{id}/downloads", a.enroll.ListDownloads, enr},
		{"DELETE", "/v1/configurator/profiles/{id}/downloads/{download}", a.enroll.RevokeDownload, enr},
		{"POST", "/v1/configurator/serials", a.enroll.ImportSerials, enr},
		{"GET", "/v1/configurator/serials", a.enroll.ListSerials, enr},
		{"POST", "/v1/configurator/serials/assign", a.enroll.AssignSerials, enr},
		{"GET", "/v1/certificates", a.enroll.ListCerts, enr},
		{"POST", "/v1/certificates/{serial}/revoke", a.enroll.RevokeCert, enr},

		{"GET", "/v1/dep/public-key", a.depPublicKey, dep},
		{"GET", "/v1/dep/tokens", a.depListTokens, dep},
		{"POST", "/v1/dep/tokens", a.depAddToken, dep},
		{"GET", "/v1/dep/tokens/{id}", a.depGetToken, dep},
		{"PUT", "/v1/dep/tokens/{id}", a.depRenewToken, dep},
		{"DELETE", "/v1/dep/tokens/{id}", a.depDeleteToken, dep},
		{"POST", "/v1/dep/tokens/{id}/sync", a.depSync, dep},
		{"GET", "/v1/dep/tokens/{id}/profiles", a.depListProfiles, dep},
		{"POST", "/v1/dep/tokens/{id}/profiles", a.depCreateProfile, dep},
		{"GET", "/v1/dep/tokens/{id}/profiles/{pid}", a.depGetProfile, dep},
		{"PUT", "/v1/dep/tokens/{id}/profiles/{pid}", a.depUpdateProfile, dep},
		{"DELETE", "/v1/dep/tokens/{id}/profiles/{pid}", a.depDeleteProfile, dep},
		{"POST", "/v1/dep/tokens/{id}/profiles/{pid}/devices", a.depAssignProfile, dep},
		{"GET", "/v1/dep/devices", a.depListDevices, dep},
		{"DELETE", "/v1/dep/devices/{serial}", a.depDeleteDevice, dep},

		{"GET", "/v1/backup", a.getBackup, bak},

		{"GET", "/v1/declarations", a.listDeclarations, ddm},
		{"POST", "/v1/declarations", a.putDeclaration, ddm},
		{"GET", "/v1/declarations/{id}", a.showDeclaration, ddm},
		{"DELETE", "/v1/declarations/{id}", a.deleteDeclaration, ddm},
		{"GET", "/v1/declarations/{id}/status", a.declarationStatus, ddm},
		{"GET", "/v1/declaration-sets", a.listDeclarationSets, ddm},
		{"POST", "/v1/declaration-sets", a.putDeclarationSet, ddm},
		{"GET", "/v1/declaration-sets/{name}", a.showDeclarationSet, ddm},
		{"DELETE", "/v1/declaration-sets/{name}", a.deleteDeclarationSet, ddm},
		{"GET", "/v1/devices/{id}/declarations", a.deviceDeclarations, ddm},
		{"GET", "/v1/software-updates", a.softwareUpdates, ddm},
	}
}
