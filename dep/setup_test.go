package dep

import (
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/storage"
)

func TestProfileCommands(t *testing.T) {
	d := storage.DEPDevice{Serial: "DMPX1234ABCD", DeviceFamily: "iPad"}
	p := storage.DEPProfile{
		SharedIPad: true, Supervised: true, MaxCachedUsers: 8, TemporarySessionOnly: true,
		UserSessionTimeout: 10 * time.Minute, TemporarySessionTimeout: 45 * time.Second,
		PasscodeLockGracePeriod: 1000 * time.Second, // not a value Apple accepts: rounded down to 900
		DeviceNameTemplate:      "Cart {{DEVICETYPE}} {{SERIAL}}",
		CellularPlanURL:         "https://carrier.example.com/esim",
	}
	cmds := profileCommands(p, d, "")
	if len(cmds) != 2 || cmds[0].requestType != "Settings" || cmds[1].requestType != "RefreshCellularPlans" {
		t.Fatalf("commands = %+v", cmds)
	}
	for _, c := range cmds {
		if _, err := commands.BuildCommand(c.requestType, c.payload); err != nil {
			t.Fatalf("%s does not pass Apple's schema: %v", c.requestType, err)
		}
	}
	items := cmds[0].payload["Settings"].([]any)
	name := items[0].(map[string]any)["DeviceName"]
	shared := items[1].(map[string]any)
	grace := items[2].(map[string]any)["PasscodeLockGracePeriod"]
	if name != "Cart iPad DMPX1234ABCD" || shared["ResidentUsers"] != int64(8) || shared["UserSessionTimeout"] != int64(600) ||
		shared["TemporarySessionTimeout"] != int64(45) || shared["TemporarySessionOnly"] != true || grace != int64(900) {
		t.Fatalf("settings = %v", items)
	}
	if cmds := profileCommands(storage.DEPProfile{}, d, ""); len(cmds) != 0 {
		t.Fatalf("an empty profile asks for %+v", cmds)
	}
}
