package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// dockerfile is the Dockerfile as instructions, continuation lines joined.
type instr struct{ op, args string }

func readDockerfile(t *testing.T) [][]instr {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instr
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || (line == "" && cur == "") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur += s + " "
			continue
		}
		cur += line
		if cur == "" {
			continue
		}
		op, args, _ := strings.Cut(cur, " ")
		cur = ""
		op = strings.ToUpper(op)
		if op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("instruction %s before FROM", op)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], instr{op, strings.TrimSpace(args)})
	}
	return stages
}

func find(st []instr, op string) []string {
	var out []string
	for _, in := range st {
		if in.op == op {
			out = append(out, in.args)
		}
	}
	return out
}

var buildOnce struct {
	sync.Once
	bin string
	err error
	out []byte
}

// goBuildLine is the Dockerfile's go build command.
var goBuildLine = regexp.MustCompile(`CGO_ENABLED=0 go build .*?\./cmd/orchard`)

// staticBinary builds cmd/orchard the way the Dockerfile does, once.
func staticBinary(t *testing.T) string {
	t.Helper()
	stages := readDockerfile(t)
	var line string
	for _, r := range find(stages[0], "RUN") {
		if m := goBuildLine.FindString(r); m != "" {
			line = m
		}
	}
	if line == "" {
		t.Fatal("the build stage has no CGO_ENABLED=0 go build ... ./cmd/orchard")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orchard-deploy-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "orchard")
		line = strings.NewReplacer("${VERSION}", "test", "${COMMIT}", "test", "/out/orchard", buildOnce.bin).Replace(line)
		args := splitQuoted(strings.TrimPrefix(line, "CGO_ENABLED=0 "))
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("build as the Dockerfile does: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.bin
}

// splitQuoted splits on spaces, keeping "double-quoted" words whole.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.bin != "" {
		os.RemoveAll(filepath.Dir(buildOnce.bin))
	}
	os.Exit(code)
}

// The Dockerfile is multi-stage, builds a static binary (CGO_ENABLED=0),
// runs it as a non-root user with the data dir on a volume owned by that
// user. With a Docker daemon the image is built; without one (this CI)
// the binary is built exactly as the build stage does, and it must be
// static and run.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(stages))
	}
	final := stages[len(stages)-1]
	users := find(final, "USER")
	if len(users) == 0 {
		t.Fatal("the runtime stage sets no USER: it would run as root")
	}
	if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		t.Errorf("USER %s is root", u)
	}
	vols := find(final, "VOLUME")
	if len(vols) == 0 || !strings.Contains(vols[0], "/data") {
		t.Errorf("VOLUME = %v, want /data", vols)
	}
	env := strings.Join(find(final, "ENV"), " ")
	if !strings.Contains(env, "ORCHARD_DATA=/data") {
		t.Errorf("ENV %q does not point the data dir at the volume", env)
	}
	owned := false
	for _, c := range find(final, "COPY") {
		if strings.Contains(c, "--chown=") && strings.HasSuffix(c, " /data") {
			owned = true
		}
	}
	if !owned {
		t.Error("/data is not created owned by the runtime user: a fresh volume would be root's")
	}
	if ep := strings.Join(find(final, "ENTRYPOINT"), ""); !strings.Contains(ep, "orchard") {
		t.Errorf("ENTRYPOINT %q does not run orchard", ep)
	}

	if docker, err := exec.LookPath("docker"); err == nil && exec.Command(docker, "info").Run() == nil {
		t.Log("a Docker daemon answers: building the image")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, docker, "build", "-q", "-t", "orchard-test:ci", "..").CombinedOutput()
		if err != nil {
			t.Fatalf("docker build: %v\n%s", err, out)
		}
		return
	}
	t.Log("no Docker daemon: building the binary as the Dockerfile's build stage does")
	bin := staticBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader: it would not start on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test") {
		t.Errorf("orchard version: %v %s", err, out)
	}
}

// unitKeys reads the [Service] section's settings.
func unitKeys(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("orchard.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = l
		case section == "[Service]":
			k, v, _ := strings.Cut(l, "=")
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// The unit runs orchard serve as an unprivileged user of its own with the
// hardening options set; systemd-analyze (installed by .ci/setup when
// root) verifies it and rates its exposure.
func TestSystemdUnit(t *testing.T) {
	keys := unitKeys(t)
	for k, want := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "StateDirectory": "orchard", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "UMask": "0077",
	} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want %s", k, got, want)
		}
	}
	exec0 := strings.Join(keys["ExecStart"], "")
	if !strings.Contains(exec0, "/usr/local/bin/orchard serve --data /var/lib/orchard") {
		t.Errorf("ExecStart = %q", exec0)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed (.ci/setup installs it when run as root): checked the settings only")
		return
	}
	// verify wants ExecStart's binary to exist: point it at the binary the
	// Dockerfile builds, nothing else changes.
	unit, err := os.ReadFile("orchard.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "orchard.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/orchard", staticBinary(t))), 0o644)
	if out, err := exec.Command(sa, "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// An exposure above 3.0 of 10 means a hardening option went missing.
	if out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=30", path).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security: exposure over 3.0: %v\n%s", err, out)
	}
}
