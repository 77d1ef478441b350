package inventory

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/storage"
)

func TestInventoryAfterEnrollment(t *testing.T) {
	for _, c := range []struct {
		name               string
		device             profile
		kind               string
		info, security     string
		wantAsked, notAsk  []string
		check              func(t *testing.T, v *View)
		wantPlatform       string
		wantOwnership      storage.Ownership
		rawInfoKey, secret string
	}{
		{
			name: "iPhone", device: simIPhone, kind: "invitation",
			info: "deviceinformation_iphone.plist", security: "securityinfo_iphone.plist",
			wantAsked:    []string{"IMEI", "MEID", "PhoneNumber", "WiFiMAC", "IsSupervised", "BatteryLevel", "IsActivationLockEnabled"},
			notAsk:       []string{"EthernetMAC", "PINRequiredForDeviceLock", "PushToken", "DevicePropertiesAttestation", "HostName"},
			wantPlatform: IOS, wantOwnership: storage.Personal, rawInfoKey: "ModemFirmwareVersion", secret: "PushToken",
			check: func(t *testing.T, v *View) {
				if v.DeviceName != "Ana's iPhone" || v.SerialNumber != "F2LZK0QJN70Q" || v.IMEI != "35 391211 437512 6" ||
					v.MEID != "35391211437512" || v.OSVersion != "17.5.1" || v.BuildVersion != "21F90" || v.ProductName != "iPhone15,3" ||
					v.ModelName != "iPhone" || v.Model != "MQ9T3" || v.WiFiMAC != "a4:c3:61:2e:90:10" || v.PhoneNumber != "+351912345678" {
					t.Errorf("identity fields: %+v", v.DeviceInventory)
				}
				if !isTrue(v.Supervised) || !isTrue(v.ActivationLockEnabled) || !isTrue(v.FindMyEnabled) || !isFalse(v.MultiUser) {
					t.Errorf("flags: supervised %v activation lock %v find my %v", v.Supervised, v.ActivationLockEnabled, v.FindMyEnabled)
				}
				if !near(v.CapacityGB, 238.35) || !near(v.AvailableGB, 171.2) || !near(v.BatteryLevel, 0.83) {
					t.Errorf("storage/battery: %v %v %v", v.CapacityGB, v.AvailableGB, v.BatteryLevel)
				}
				if !isTrue(v.PasscodePresent) || !isTrue(v.PasscodeCompliant) || !isFalse(v.UserEnrollment) {
					t.Errorf("security: %+v", v.DeviceInventory)
				}
			},
		},
		{
			name: "Mac", device: simMac, kind: "configurator",
			info: "deviceinformation_mac.plist", security: "securityinfo_mac.plist",
			wantAsked:    []string{"EthernetMAC", "PINRequiredForDeviceLock", "PINRequiredForEraseDevice", "IsAppleSilicon", "HostName", "SerialNumber"},
			notAsk:       []string{"IMEI", "MEID", "PhoneNumber", "IsMDMLostModeEnabled", "PushToken"},
			wantPlatform: MacOS, wantOwnership: storage.Corporate, rawInfoKey: "OSUpdateSettings", secret: "FDE_PersonalRecoveryKeyCMS",
			check: func(t *testing.T, v *View) {
				if v.SerialNumber != "C02ZK3MLMD6T" || v.EthernetMAC != "ac:de:48:00:11:22" || v.OSVersion != "14.6.1" || v.ModelNumber != "MPHE3LL/A" {
					t.Errorf("identity fields: %+v", v.DeviceInventory)
				}
				if !isFalse(v.Supervised) || !isTrue(v.AppleSilicon) || !isTrue(v.PINRequiredForDeviceLock) || !near(v.BatteryLevel, 0.46) {
					t.Errorf("flags: %+v", v.DeviceInventory)
				}
				if !isTrue(v.FileVaultEnabled) || !isTrue(v.UserApprovedEnrollment) || !isFalse(v.EnrolledViaDEP) ||
					v.BootstrapTokenAllowedForAuth != "allowed" || !isFalse(v.ActivationLockManageable) {
					t.Errorf("security: %+v", v.DeviceInventory)
				}
				if _, ok := v.Raw.SecurityInfo["FirewallSettings"].(map[string]any); !ok {
					t.Errorf("raw security info lacks FirewallSettings: %v", v.Raw.SecurityInfo)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			d := h.enroll(c.device, c.kind)
			if h.pushed.count(d.UDID) != 1 {
				t.Errorf("enrollment pushed the device %d times, want 1", h.pushed.count(d.UDID))
			}
			var before View
			if code := h.api("GET", "/v1/devices/"+d.UDID+"/inventory", nil, &before); code != 200 {
				t.Fatalf("inventory before answers: %d", code)
			}
			if len(before.Pending) != 2 || before.Platform != c.wantPlatform || before.SerialNumber != d.SerialNumber {
				t.Fatalf("before answers: pending %v platform %q serial %q", before.Pending, before.Platform, before.SerialNumber)
			}
			a := newAnswers(t, c.info, c.security)
			cmds := drain(t, d, a.answer)
			if got := typesOf(cmds); !slices.Equal(got, []string{"DeviceInformation", "SecurityInfo"}) {
				t.Fatalf("device received %v", got)
			}
			for _, q := range c.wantAsked {
				if !slices.Contains(a.asked, q) {
					t.Errorf("query %s not asked (asked %v)", q, a.asked)
				}
			}
			for _, q := range c.notAsk {
				if slices.Contains(a.asked, q) {
					t.Errorf("query %s asked of a %s", q, c.name)
				}
			}
			var v View
			if code := h.api("GET", "/v1/devices/"+d.UDID+"/inventory", nil, &v); code != 200 {
				t.Fatalf("inventory: %d", code)
			}
			if v.Platform != c.wantPlatform || v.Ownership != c.wantOwnership || !v.Enrolled || v.EnrollmentMethod != c.kind {
				t.Errorf("platform %q ownership %q enrolled %v method %q", v.Platform, v.Ownership, v.Enrolled, v.EnrollmentMethod)
			}
			if len(v.Pending) != 0 || v.DeviceInformationAt.IsZero() || v.SecurityInfoAt.IsZero() || v.BootstrapTokenEscrowed {
				t.Errorf("bookkeeping: pending %v at %v/%v bootstrap %v", v.Pending, v.DeviceInformationAt, v.SecurityInfoAt, v.BootstrapTokenEscrowed)
			}
			if v.Raw.DeviceInformation[c.rawInfoKey] == nil {
				t.Errorf("raw device information lacks %s: %v", c.rawInfoKey, v.Raw.DeviceInformation)
			}
			if v.Raw.DeviceInformation[c.secret] != nil || v.Raw.SecurityInfo[c.secret] != nil {
				t.Errorf("secret %s is served", c.secret)
			}
			c.check(t, &v)
			if more := drain(t, d, a.answer); len(more) != 0 {
				t.Errorf("queries queued again right after the answers: %v", typesOf(more))
			}
		})
	}
}

func TestBootstrapTokenEscrowShown(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simMac, "ade")
	if _, err := d.Checkin(context.Background(), map[string]any{"MessageType": "SetBootstrapToken", "UDID": d.UDID, "BootstrapToken": []byte("bootstrap-secret")}); err != nil {
		t.Fatal(err)
	}
	var v View
	h.api("GET", "/v1/devices/"+d.UDID+"/inventory", nil, &v)
	if !v.BootstrapTokenEscrowed || v.Ownership != storage.Corporate {
		t.Fatalf("escrowed %v ownership %q", v.BootstrapTokenEscrowed, v.Ownership)
	}
}

func TestRequeryEveryInterval(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	a := newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist")
	drain(t, d, a.answer)

	h.clock.Advance(DefaultInterval - time.Minute)
	if cmds := drain(t, d, a.answer); len(cmds) != 0 {
		t.Fatalf("re-queried before the interval: %v", typesOf(cmds))
	}
	h.clock.Advance(2 * time.Minute)
	cmds := drain(t, d, a.answer)
	if got := typesOf(cmds); !slices.Equal(got, []string{"DeviceInformation", "SecurityInfo"}) {
		t.Fatalf("after the interval the device got %v", got)
	}
	rec, err := h.store.Inventory(context.Background(), d.UDID)
	if err != nil || !rec.QueriedAt.Equal(h.clock.Now()) || !rec.DeviceInformationAt.Equal(h.clock.Now()) {
		t.Fatalf("record after re-query: %+v %v", rec, err)
	}

	// A fresh process (empty memory) loads the last query time from storage.
	h.inv.mu.Lock()
	clear(h.inv.next)
	h.inv.mu.Unlock()
	h.clock.Advance(time.Hour)
	if cmds := drain(t, d, a.answer); len(cmds) != 0 {
		t.Fatalf("re-queried after a restart within the interval: %v", typesOf(cmds))
	}
}

func TestNoRequeueWhileOutstanding(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	ctx := context.Background()
	// The device says NotNow to everything: the queries stay outstanding.
	notNow := func(*simdevice.Command) (string, map[string]any) { return "NotNow", nil }
	first := drain(t, d, notNow)
	if len(first) != 2 {
		t.Fatalf("first connect got %v", typesOf(first))
	}
	h.clock.Advance(3 * DefaultInterval)
	again := drain(t, d, notNow)
	if len(again) != 2 || again[0].UUID != first[0].UUID || again[1].UUID != first[1].UUID {
		t.Fatalf("outstanding queries were re-queued: first %v/%v then %v", first[0].UUID, first[1].UUID, again)
	}
	for _, c := range first {
		_, targets, err := h.store.Command(ctx, c.UUID)
		if err != nil || len(targets) != 1 {
			t.Fatalf("command %s: %v %v", c.UUID, targets, err)
		}
	}
	if n, _ := h.store.QueueDepth(ctx, d.UDID); n != 2 {
		t.Fatalf("queue depth %d, want the 2 original queries", n)
	}
	// Once answered, the next due connect queues new ones.
	a := newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist")
	drain(t, d, a.answer)
	h.clock.Advance(DefaultInterval + retryAfter)
	next := drain(t, d, a.answer)
	if len(next) != 2 || next[0].UUID == first[0].UUID {
		t.Fatalf("after answering, the next round got %v", next)
	}
}

func isTrue(b *bool) bool  { return b != nil && *b }
func isFalse(b *bool) bool { return b != nil && !*b }

func near(f *float64, want float64) bool {
	return f != nil && *f > want-1e-9 && *f < want+1e-9
}
