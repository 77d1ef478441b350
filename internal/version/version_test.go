package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

// Build info from the toolchain fills every field; the -ldflags values win
// over it; nothing recorded reads "unknown", never an empty field.
func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/orchardmdm/orchard", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := fromBuildInfo(bi, true)
	want := Info{Version: "v1.2.3", Commit: "0123456789abcdef0123", BuildDate: "2026-12-01T10:00:00Z", GoVersion: "go1.26.0", Modified: true}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if s := got.String(); s != "orchard v1.2.3 (commit 0123456789ab-dirty, built 2026-12-01T10:00:00Z, go1.26.0)" {
		t.Fatalf("String() = %q", s)
	}

	version, commit, date = "v9.9.9", "feedface", "2026-12-24"
	defer func() { version, commit, date = "", "", "" }()
	if got := fromBuildInfo(bi, true); got.Version != "v9.9.9" || got.Commit != "feedface" || got.BuildDate != "2026-12-24" {
		t.Fatalf("ldflags not preferred: %+v", got)
	}
	version, commit, date = "", "", ""
	if got := fromBuildInfo(nil, false); got.Version != "unknown" || got.Commit != "unknown" || got.BuildDate != "unknown" || !strings.HasPrefix(got.GoVersion, "go") {
		t.Fatalf("no build info: %+v", got)
	}
}
