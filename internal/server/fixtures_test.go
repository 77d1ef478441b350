package server_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

type fixture struct {
	name string
	raw  []byte
	m    map[string]any
}

func loadFixtures(t *testing.T, dir string) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", dir, "*.plist"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	var out []fixture
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := plist.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, fixture{name: filepath.Base(f), raw: raw, m: m})
	}
	return out
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// deviceKey is the key a fixture's device enrolls under.
func deviceKey(m map[string]any) (id string, userEnrollment bool) {
	if u := str(m, "UDID"); u != "" {
		return u, false
	}
	return str(m, "EnrollmentID"), true
}

// fixtureDevices hands out one simulated device per fixture device ID,
// with its own certificate from the server's CA: fixtures share IDs, and a
// second certificate could not take over an enrolled device.
type fixtureDevices struct {
	s    *servertest.Server
	devs map[string]*simdevice.Device
}

func (f *fixtureDevices) get(t *testing.T, m map[string]any) *simdevice.Device {
	id, _ := deviceKey(m)
	if d, ok := f.devs[id]; ok {
		return d
	}
	d := f.s.NewDevice(t)
	d.UDID = id
	f.devs[id] = d
	return d
}

// authenticate enrolls the fixture's device channel with a synthesized
// Authenticate and TokenUpdate.
func authenticate(t *testing.T, dev *simdevice.Device, m map[string]any) {
	t.Helper()
	ctx := context.Background()
	id, ue := deviceKey(m)
	key := "UDID"
	if ue {
		key = "EnrollmentID"
	}
	for _, msg := range []map[string]any{
		{"MessageType": "Authenticate", key: id, "Topic": fixtureTopic, "Model": "iPhone14,2", "ModelName": "iPhone", "DeviceName": "Fixture"},
		{"MessageType": "TokenUpdate", key: id, "Topic": fixtureTopic, "Token": []byte("device-token"), "PushMagic": "MAGIC"},
	} {
		if _, err := dev.Checkin(ctx, msg); err != nil {
			t.Fatalf("enroll %s: %v", id, err)
		}
	}
}

// fixtureTopic is the push topic the captured fixtures were sent with.
const fixtureTopic = "com.apple.mgmt.External.8c2b5f1e-6d3a-4b7e-9f10-2a4c6e8b0d12"

// Every check-in fixture, replayed verbatim through the real handler with
// a real Mdm-Signature, leaves the state it describes.
func testCheckinFixtures(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	s.UsePushTopic(t, fixtureTopic)
	devs := &fixtureDevices{s: s, devs: map[string]*simdevice.Device{}}
	for _, f := range loadFixtures(t, "checkin") {
		t.Run(f.name, func(t *testing.T) {
			mt := str(f.m, "MessageType")
			dev := devs.get(t, f.m)
			devID, _ := deviceKey(f.m)
			if mt != "Authenticate" {
				authenticate(t, dev, f.m)
			}
			sig, err := dev.Sign(f.raw)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := dev.PutSigned(ctx, dev.CheckinURL, "application/x-apple-aspen-mdm-checkin", f.raw, sig)
			want := http.StatusOK
			switch mt {
			case "UserAuthenticate":
				want = http.StatusGone // user authentication is off by default
			case "GetToken":
				want = http.StatusBadRequest // not supported yet
			}
			if got := code(err); got != want {
				t.Fatalf("%s answered %d (%v), want %d", mt, got, err, want)
			}
			c, err := mdm.DecodeCheckin(f.raw)
			if err != nil {
				t.Fatal(err)
			}
			e, err := s.Store().Enrollment(ctx, c.Channel.ID())
			switch mt {
			case "Authenticate":
				if err != nil || !e.Enrolled || e.Facts.SerialNumber != str(f.m, "SerialNumber") || e.Facts.Model != str(f.m, "Model") || e.Facts.OSVersion != str(f.m, "OSVersion") {
					t.Fatalf("after Authenticate: %+v %v", e, err)
				}
			case "TokenUpdate":
				tok, _ := f.m["Token"].([]byte)
				if err != nil || !e.Enrolled || !bytes.Equal(e.Token, tok) || e.PushMagic != str(f.m, "PushMagic") || e.Topic != str(f.m, "Topic") {
					t.Fatalf("after TokenUpdate: %+v %v", e, err)
				}
				if c.Channel.IsUser() && e.UserShortName != str(f.m, "UserShortName") {
					t.Fatalf("user channel names: %+v", e)
				}
				// A Shared iPad user's channel is keyed by its short name
				// (every user sends the same UserID); a macOS user's by UserID.
				if c.Channel.IsUser() && !c.Channel.UserEnrollment {
					wantKey, wantType := devID+":"+str(f.m, "UserID"), storage.User
					if str(f.m, "UserID") == mdm.SharedIPadUserID {
						wantKey, wantType = devID+":"+str(f.m, "UserShortName"), storage.SharedIPadUser
					}
					if e.ID != wantKey || e.Type != wantType {
						t.Fatalf("user channel stored as %q (%s), want %q (%s)", e.ID, e.Type, wantKey, wantType)
					}
				}
				// A user waiting in setup is sent UserConfigured.
				if c.Channel.IsUser() && f.m["AwaitingConfiguration"] == true {
					cmd, err := dev.Report(ctx, "Idle", "", map[string]any{"UserID": str(f.m, "UserID"), "UserShortName": str(f.m, "UserShortName")})
					if err != nil || cmd == nil || cmd.RequestType != "UserConfigured" {
						t.Fatalf("user channel awaiting configuration got %+v, %v; want UserConfigured", cmd, err)
					}
				}
				if _, ok := f.m["UnlockToken"]; ok && len(e.UnlockTokenSealed) == 0 {
					t.Fatal("unlock token not escrowed")
				}
			case "CheckOut":
				if err != nil || e.Enrolled {
					t.Fatalf("after CheckOut: %+v %v", e, err)
				}
			case "SetBootstrapToken":
				if err != nil || len(e.BootstrapTokenSealed) == 0 {
					t.Fatalf("after SetBootstrapToken: %+v %v", e, err)
				}
				tok := f.m["BootstrapToken"].([]byte)
				got, err := dev.Checkin(ctx, map[string]any{"MessageType": "GetBootstrapToken", "UDID": devID})
				if err != nil {
					t.Fatal(err)
				}
				m, _ := simdevice.DecodePlistMap(got)
				if b, _ := m["BootstrapToken"].([]byte); !bytes.Equal(b, tok) {
					t.Fatalf("escrowed token = %q, want %q", b, tok)
				}
			case "GetBootstrapToken":
				if m, err := simdevice.DecodePlistMap(resp); err != nil || m["BootstrapToken"] != nil {
					t.Fatalf("GetBootstrapToken with nothing escrowed = %q %v", resp, err)
				}
			}
		})
	}
}

// Every report fixture, answering a command queued for its channel, is
// stored verbatim with its status.
func testReportFixtures(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	s.UsePushTopic(t, fixtureTopic)
	devs := &fixtureDevices{s: s, devs: map[string]*simdevice.Device{}}
	for _, f := range loadFixtures(t, "report") {
		t.Run(f.name, func(t *testing.T) {
			dev := devs.get(t, f.m)
			authenticate(t, dev, f.m)
			r, err := mdm.DecodeReport(f.raw)
			if err != nil {
				t.Fatal(err)
			}
			channel := r.Channel.ID()
			if r.Channel.IsUser() {
				id, ue := deviceKey(f.m)
				msg := map[string]any{"MessageType": "TokenUpdate", "Topic": fixtureTopic, "Token": []byte("user-token"), "PushMagic": "USERMAGIC"}
				if ue {
					msg["EnrollmentID"], msg["EnrollmentUserID"] = id, str(f.m, "EnrollmentUserID")
				} else {
					msg["UDID"], msg["UserID"] = id, str(f.m, "UserID")
					if name := str(f.m, "UserShortName"); name != "" {
						msg["UserShortName"] = name
					}
				}
				if _, err := dev.Checkin(ctx, msg); err != nil {
					t.Fatal(err)
				}
			}
			if r.Status != mdm.StatusIdle {
				rt := strings.SplitN(strings.TrimSuffix(f.name, ".plist"), ".", 2)
				reqType := "ProfileList"
				if len(rt) == 2 && !slices.Contains([]string{"user-channel", "user-enrollment"}, rt[1]) {
					reqType = rt[1]
				}
				raw, _ := mdm.EncodeCommand(r.CommandUUID, mdm.CommandPayload{"RequestType": reqType})
				if err := s.Store().Enqueue(ctx, &storage.Command{UUID: r.CommandUUID, RequestType: reqType, Raw: raw, CreatedAt: time.Now()}, []string{channel}); err != nil {
					t.Fatal(err)
				}
				// Offer it, as the device's previous connection would have
				// (only offered commands may be answered); what enrollment
				// queued ahead of it is canceled.
				for i := 0; ; i++ {
					c, err := s.Store().Next(ctx, channel)
					if err != nil || c == nil || i == 20 {
						t.Fatalf("the fixture's command never reached the head of %s: %v", channel, err)
					}
					if c.UUID == r.CommandUUID {
						break
					}
					if _, err := s.Store().Cancel(ctx, c.UUID); err != nil {
						t.Fatal(err)
					}
				}
			}
			sig, err := dev.Sign(f.raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dev.PutSigned(ctx, dev.ServerURL, "application/x-apple-aspen-mdm", f.raw, sig); err != nil {
				t.Fatalf("report: %v", err)
			}
			if r.Status == mdm.StatusIdle {
				return
			}
			results, err := s.Store().Results(ctx, r.CommandUUID)
			if err != nil || len(results) != 1 || !bytes.Equal(results[0].Raw, f.raw) || string(results[0].Status) != string(r.Status) || results[0].ChannelID != channel {
				t.Fatalf("stored results = %+v %v", results, err)
			}
			if len(results[0].ErrorChain) != len(r.ErrorChain) {
				t.Fatalf("error chain: %d stored, %d sent", len(results[0].ErrorChain), len(r.ErrorChain))
			}
		})
	}
}

func code(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return statusOf(err)
}
