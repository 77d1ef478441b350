// Package version says which build of Orchard is running: module version,
// commit, commit time and Go version, read from the build info the Go
// toolchain embeds, unless the Makefile overrides them with -ldflags -X.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags "-X github.com/orchardmdm/orchard/internal/version.version=..."
// (and commit, date); empty means "take it from the build info".
var (
	version string
	commit  string
	date    string
)

// Info is one build's identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
	Modified  bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
}

// Get returns this binary's build identity; fields the build did not
// record read "unknown".
func Get() Info {
	return fromBuildInfo(debug.ReadBuildInfo())
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: version, Commit: commit, BuildDate: date, GoVersion: runtime.Version()}
	if ok {
		if in.Version == "" && bi.Main.Version != "" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.BuildDate == "" {
					in.BuildDate = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
	}
	for _, f := range []*string{&in.Version, &in.Commit, &in.BuildDate} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return in
}

// String is the one line `orchard version`, /healthz and the start log show.
func (i Info) String() string {
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "-dirty"
	}
	return fmt.Sprintf("orchard %s (commit %s, built %s, %s)", i.Version, c, i.BuildDate, i.GoVersion)
}
