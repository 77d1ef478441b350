package server_test

import (
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// e2eTests is the end-to-end suite: real handlers, a real store, simulated
// devices. TestE2E runs all of it on every backend in servertest.Backends.
var e2eTests = []struct {
	name string
	fn   func(t *testing.T, b servertest.Backend)
}{
	{"ADEEnrollment", testADEEnrollment},
	{"DeviceRoundTrip", testDeviceRoundTrip},
	{"IdentityFailures", testIdentityFailures},
	{"AuthenticateRules", testAuthenticateRules},
	{"NotNowAndOrdering", testNotNowAndOrdering},
	{"UserChannelAndBootstrap", testUserChannelAndBootstrap},
	{"BadInputWritesNothing", testBadInputWritesNothing},
	{"AdminAPIAuth", testAdminAPIAuth},
	{"CommandChecks", testCommandChecks},
	{"UserAuthenticateOn", testUserAuthenticateOn},
	{"CheckinFixtures", testCheckinFixtures},
	{"ReportFixtures", testReportFixtures},
	{"MetricsEndpoint", testMetricsEndpoint},
	{"InventoryAfterEnrollment", testInventoryAfterEnrollment},
	{"OverTheAirEnrollment", testOverTheAirEnrollment},
	{"InvitationEnrollment", testInvitationEnrollment},
	{"ConfiguratorDirectEnrollment", testConfiguratorDirectEnrollment},
	{"PushOnEnqueue", testPushOnEnqueue},
	{"ForgedMachineInfoCannotTakeOver", testForgedMachineInfoCannotTakeOver},
	{"UDIDCaseCopyIsTheSameDevice", testUDIDCaseCopyIsTheSameDevice},
	{"ResultRulesEndToEnd", testResultRulesEndToEnd},
	{"RefusedAuthenticateRecorded", testRefusedAuthenticateRecorded},
	{"IdentityRenewal", testIdentityRenewal},
	{"RenewalIsNoTakeover", testRenewalIsNoTakeover},
	{"SharedIPadUsers", testSharedIPadUsers},
	{"NoPushCertificate", testNoPushCertificate},
	{"ActionsPushedOnlyWhenPushed", testActionsPushedOnlyWhenPushed},
	{"RealClientRequests", testRealClientRequests},
	{"ProfilePayloads", testProfilePayloads},
	{"OSUpdateCommandsEndAt26", testOSUpdateCommandsEndAt26},
	{"AllowUnknown", testAllowUnknown},
	{"DirectoryAPI", testDirectoryAPI},
	{"PrimaryUser", testPrimaryUser},
	{"AdminRoles", testAdminRoles},
	{"CommandLog", testCommandLog},
	{"Profiles", testProfiles},
	{"DeclarativeSoftwareUpdate", testDeclarativeSoftwareUpdate},
	{"EnrollmentPolicy", testEnrollmentPolicy},
	{"Categories", testCategories},
	{"CategoryJoinOnUser", testCategoryJoinOnUser},
	{"ConsoleLockRoundTrip", testConsoleLockRoundTrip},
	{"Webhooks", testWebhooks},
	{"Terms", testTerms},
	{"TermsEnforced", testTermsEnforced},
	{"IncompleteEnrollments", testIncompleteEnrollments},
	{"DeclarationSchema", testDeclarationSchema},
	{"DeclarationSetScope", testDeclarationSetScope},
	{"UserChannelProfiles", testUserChannelProfiles},
	{"GroupScope", testGroupScope},
	{"CategoryScope", testCategoryScope},
	{"PortalEnrollment", testPortalEnrollment},
	{"PortalRefusals", testPortalRefusals},
	{"SetupAssistantSignIn", testSetupAssistantSignIn},
	{"SetupAssistantDeviceLimit", testSetupAssistantDeviceLimit},
	{"ADEMinimumOS", testADEMinimumOS},
}

func TestE2E(t *testing.T) {
	for _, b := range servertest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range e2eTests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
			}
		})
	}
}
