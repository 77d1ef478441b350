package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/version"
	"github.com/orchardmdm/orchard/storage"
)

// cli runs one command line and returns stdout, stderr and the exit code
// main would use.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	if err != nil {
		fmt.Fprintf(&errOut, "orchard: %v\n", err)
	}
	return out.String(), errOut.String(), exitCode(err)
}

// walk visits every command of the tree with its path.
func walk(c *command, path []string, fn func(*command, []string)) {
	fn(c, path)
	for _, s := range c.subs {
		walk(s, append(append([]string{}, path...), s.name), fn)
	}
}

// Every command answers --help (and `orchard help <path>`) with its
// summary, usage line, arguments, subcommands or flags, and examples.
func TestHelpAtEveryLevel(t *testing.T) {
	walk(rootCommand(), nil, func(c *command, path []string) {
		if c.hidden {
			return
		}
		name := strings.Join(append([]string{"orchard"}, path...), " ")
		out, errOut, code := cli(t, append(append([]string{}, path...), "--help")...)
		if code != 0 {
			t.Errorf("%s --help: exit %d: %s", name, code, errOut)
			return
		}
		if !strings.HasPrefix(out, capitalize(c.summary)+"\n\nUsage:\n  "+name+" ") {
			t.Errorf("%s --help starts %q", name, out[:min(len(out), 120)])
		}
		for _, a := range c.args {
			if !strings.Contains(out, a) {
				t.Errorf("%s --help does not name argument %s", name, a)
			}
		}
		for _, s := range c.subs {
			if !s.hidden && !strings.Contains(out, "\n  "+s.name+" ") {
				t.Errorf("%s --help does not list %s", name, s.name)
			}
		}
		for _, ex := range c.examples {
			if !strings.Contains(out, "  "+ex+"\n") {
				t.Errorf("%s --help misses example %q", name, ex)
			}
		}
		if c.setup != nil && !c.raw {
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			c.setup(fs, &env{})
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(out, "-"+f.Name) {
					t.Errorf("%s --help does not show flag %s", name, f.Name)
				}
			})
		}
		if help, _, _ := cli(t, append([]string{"help"}, path...)...); help != out {
			t.Errorf("orchard help %s differs from --help", strings.Join(path, " "))
		}
	})
	// A group without its subcommand shows its help on stderr, exit 2.
	out, errOut, code := cli(t, "devices")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "Commands:\n  list ") {
		t.Fatalf("orchard devices: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Command lines that cannot run exit 2 with a one-line reason, before any
// call to a server.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"devics", "list"},
		{"devices", "lst"},
		{"devices", "list", "--no-such-flag"},
		{"devices", "show"},
		{"devices", "show", "a", "b"},
		{"devices", "list", "-o", "yaml"},
		{"completion", "tcsh"},
		{"help", "nope"},
		{"serve", "--renew-before", "0"},
		{"serve", "--renew-before", "301"},
	} {
		_, errOut, code := cli(t, append(args, "--server", "https://127.0.0.1:1", "--api-key", "k")...)
		if code != exitUsage || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "orchard: ") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// Flags go anywhere: global ones before the command, a leaf's after its
// arguments; exit codes tell not found, refused and unreachable apart.
func TestFlagsAnywhereAndExitCodes(t *testing.T) {
	s := servertest.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)

	out, errOut, code := cli(t, "--server", s.URL, "--data", s.Dir, "-o", "json", "devices", "show", dev.UDID)
	var shown struct {
		ID string `json:"id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.ID != dev.UDID {
		t.Fatalf("globals before the command: exit %d %q %s", code, out, errOut)
	}
	out, _, code = cli(t, "devices", "show", dev.UDID, "--data="+s.Dir, "--server", s.URL)
	if code != 0 || !strings.Contains(out, "id:") || !strings.Contains(out, dev.UDID) {
		t.Fatalf("globals after the arguments: exit %d %q", code, out)
	}
	// The README's form: arguments first, then the action's flags.
	out, errOut, code = cli(t, "--data", s.Dir, "--server", s.URL, "devices", "action", dev.UDID, "lock", "--set", "message=Call IT")
	if code != 0 || !strings.Contains(out, "command_uuid:") {
		t.Fatalf("devices action <udid> lock --set: exit %d %q %s", code, out, errOut)
	}
	if cmd, err := dev.Idle(context.Background()); err != nil || cmd == nil || cmd.RequestType != "DeviceLock" || cmd.Payload["Message"] != "Call IT" {
		t.Fatalf("device received %+v %v", cmd, err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"unknown device", []string{"devices", "show", "00008030-0000000000000BAD"}, exitNotFound},
		{"unknown command uuid", []string{"commands", "show", "6f1c3e2a-0000-4000-8000-000000000000"}, exitNotFound},
		{"wrong key", []string{"devices", "list", "--api-key", "wrong"}, exitRefused},
		{"destructive without --confirm", []string{"devices", "action", dev.UDID, "retire"}, exitRefused},
	} {
		_, errOut, code := cli(t, append(tc.args, "--data", s.Dir, "--server", s.URL)...)
		if code != tc.code || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d, want %d; stderr %q", tc.name, code, tc.code, errOut)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()
	if _, errOut, code := cli(t, "devices", "list", "--data", s.Dir, "--server", closed); code != exitServer {
		t.Errorf("unreachable server: exit %d, want %d (%s)", code, exitServer, errOut)
	}
}

// seed writes n enrolled devices straight into the server's store.
func seed(t *testing.T, s *servertest.Server, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				id := fmt.Sprintf("00008030-%016X", 0xA000000+i)
				ids[i] = id
				e := &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: time.Now(),
					EnrollmentMethod: "profile", Facts: &storage.DeviceFacts{UDID: id, SerialNumber: fmt.Sprintf("S%010d", i), Model: "iPhone14,2", OSVersion: "17.5"}}
				if err := s.Store().UpdateEnrollment(context.Background(), id, e, func(*storage.Enrollment) error { return nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// The "done when": 3,000 seeded devices come out of
// devices list --all -o csv, each once, in ID order; progress goes to
// stderr one page at a time.
func TestDevicesListAllCSV(t *testing.T) {
	s := servertest.Start(t)
	ids := seed(t, s, 3000)

	out, errOut, code := cli(t, "devices", "list", "--all", "-o", "csv", "--data", s.Dir, "--server", s.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3001 || strings.Join(recs[0], ",") != "ID,SERIAL,NAME,MODEL,OS,ENROLLED,METHOD,LAST SEEN" {
		t.Fatalf("%d rows, header %q", len(recs), recs[0])
	}
	seen := map[string]bool{}
	for i, r := range recs[1:] {
		if seen[r[0]] {
			t.Fatalf("row %d repeats %s", i, r[0])
		}
		seen[r[0]] = true
		if i > 0 && r[0] <= recs[i][0] {
			t.Fatalf("row %d out of order: %s after %s", i, r[0], recs[i][0])
		}
		if r[3] != "iPhone14,2" || r[5] != "true" || r[6] != "profile" {
			t.Fatalf("row %d = %q", i, r)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("%s missing", id)
		}
	}
	if !strings.Contains(errOut, "page 3: 1000 devices, 3000 so far\n") {
		t.Errorf("progress lines: %q", errOut)
	}

	// One page: a table, and a hint on stderr that there is more.
	out, errOut, code = cli(t, "devices", "list", "--limit", "5", "--data", s.Dir, "--server", s.URL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 6 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], ids[0]+"  ") {
		t.Fatalf("table: exit %d %q", code, out)
	}
	if !strings.Contains(errOut, "more devices: add --all, or --after "+ids[4]) {
		t.Errorf("no paging hint: %q", errOut)
	}
	// JSON through every page is one document with every device.
	out, _, _ = cli(t, "devices", "list", "--all", "-o", "json", "--data", s.Dir, "--server", s.URL)
	var list struct {
		Devices []json.RawMessage `json:"devices"`
		Next    string            `json:"next"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Devices) != 3000 || list.Next != "" {
		t.Fatalf("json --all: %d devices, next %q, %v", len(list.Devices), list.Next, err)
	}
}

// A bulk command answers its summary first (queued, refused by reason),
// then one line per target, and exits 4 when any target was refused.
func TestCommandsSendSummary(t *testing.T) {
	s := servertest.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	unknown := "00008030-0000000000000BAD"
	out, errOut, code := cli(t, "commands", "send", "--udid", dev.UDID, "--udid", unknown, "--type", "DeviceInformation",
		"--set", `Queries=["UDID"]`, "--data", s.Dir, "--server", s.URL)
	if code != exitRefused {
		t.Fatalf("exit %d, want %d: %s %s", code, exitRefused, out, errOut)
	}
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "queued 1, refused 1 (1 ") {
		t.Fatalf("summary line %q", first)
	}
	if !strings.Contains(out, dev.UDID+"  yes") || !strings.Contains(out, unknown+"  no") {
		t.Fatalf("per-target table missing:\n%s", out)
	}
	// Every target refused: the server answers 400 with the reasons, and
	// the CLI still shows them.
	out, errOut, code = cli(t, "commands", "send", "--udid", unknown, "--type", "DeviceInformation", "--set", `Queries=["UDID"]`, "--data", s.Dir, "--server", s.URL)
	if code != exitRefused || !strings.HasPrefix(out, "queued 0, refused 1 (1 ") {
		t.Fatalf("all refused: exit %d %q %s", code, out, errOut)
	}
}

// commands list prints the fleet's command log newest first, filtered,
// and --all follows its before cursor through pages of one.
func TestCommandsList(t *testing.T) {
	s := servertest.Start(t)
	dev1, dev2 := s.NewDevice(t), s.NewDevice(t)
	s.Enroll(t, dev1)
	s.Enroll(t, dev2)
	flags := []string{"--data", s.Dir, "--server", s.URL}
	if _, errOut, code := cli(t, append([]string{"commands", "send", "--udid", dev1.UDID, "--udid", dev2.UDID, "--type", "ProfileList"}, flags...)...); code != 0 {
		t.Fatalf("send: exit %d %s", code, errOut)
	}
	out, errOut, code := cli(t, append([]string{"commands", "list", "--type", "ProfileList", "--sender", "bootstrap", "--all", "--limit", "1", "-o", "csv"}, flags...)...)
	if code != 0 {
		t.Fatalf("list: exit %d %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "QUEUED,COMMAND,STATUS,DEVICE,SENDER,ANSWERED,UUID" ||
		recs[1][3] != dev2.UDID || recs[2][3] != dev1.UDID || recs[1][4] != "bootstrap" || recs[1][2] != "Queued" || recs[1][6] != recs[2][6] {
		t.Fatalf("list = %q (%s)", recs, errOut)
	}
	if !strings.Contains(errOut, "page 2: 1 commands") {
		t.Errorf("progress: %q", errOut)
	}
	// One page of one: the hint names the before cursor.
	if _, errOut, _ := cli(t, append([]string{"commands", "list", "--limit", "1"}, flags...)...); !strings.Contains(errOut, "add --all, or --before ") {
		t.Errorf("paging hint: %q", errOut)
	}
	if _, errOut, code := cli(t, append([]string{"commands", "list", "--since", "yesterday"}, flags...)...); code == 0 || !strings.Contains(errOut, "RFC 3339") {
		t.Errorf("bad --since: exit %d %q", code, errOut)
	}
}

// Completion scripts call back into the binary, which answers from the
// tree: subcommands in a group, flags in a leaf.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, _, code := cli(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d %q", sh, code, out)
		}
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{""}, "serve\nmigrate\ndevices\ncommands\npush\npush-cert\nenroll\ndep\nprofiles\nusers\ngroups\ncategories\nterms\ndeclarations\ndeclaration-sets\npolicy\ncorporate-ids\nenrollment\nsoftware-updates\ndemo\nsimulate\nbackup\nrestore\nadmins\ntokens\naudit\nwebhooks\nversion\ncompletion\nhelp\n"},
		{[]string{"push"}, "push\npush-cert\n"},
		{[]string{"devices", "a"}, "apps\naction\n"},
		{[]string{"--server", "x", "devices", "list", "--a"}, "--after\n--all\n--api-key\n"},
		{[]string{"devices", "list", "x"}, ""},
	} {
		out, _, code := cli(t, append([]string{"__complete"}, tc.words...)...)
		if code != 0 || out != tc.want {
			t.Errorf("__complete %q = %q, want %q", tc.words, out, tc.want)
		}
	}
}

// orchard version prints the build's identity; /healthz keeps "ok" as its
// first line and adds the same identity.
func TestVersion(t *testing.T) {
	want := version.Get()
	out, _, code := cli(t, "version")
	if code != 0 || out != want.String()+"\n" {
		t.Fatalf("version = %q", out)
	}
	out, _, _ = cli(t, "version", "-o", "json")
	var got version.Info
	if err := json.Unmarshal([]byte(out), &got); err != nil || got != want {
		t.Fatalf("version -o json = %q %v", out, err)
	}
	s := servertest.Start(t)
	resp, err := s.Client.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if body.String() != "ok\n"+want.String()+"\n" {
		t.Fatalf("/healthz = %q", body.String())
	}
}

// Tables for objects are key: value lines in the API's order; CSV of a
// list is a header and one row per item; JSON is the API's, unchanged.
func TestOutputFormats(t *testing.T) {
	body := []byte(`{"command_uuid":"u1","request_type":"DeviceLock","targets":[{"target":"d1","status":"Queued"},{"target":"d2","status":"Error"}],"push":{"has_token":true}}`)
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out}
	if err := e.render(body, call{}); err != nil {
		t.Fatal(err)
	}
	want := "command_uuid:   u1\nrequest_type:   DeviceLock\npush.has_token: yes\n\ntargets:\nTARGET  STATUS\nd1      Queued\nd2      Error\n"
	if out.String() != want {
		t.Fatalf("object table:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	e.output = "json"
	e.render(body, call{})
	if out.String() != string(body)+"\n" {
		t.Fatalf("json changed: %s", out.String())
	}
	out.Reset()
	e.output = "csv"
	e.render([]byte(`{"tokens":[{"id":"a","name":"Main, HQ"},{"id":"b"}]}`), call{list: &listView{key: "tokens"}})
	if out.String() != "ID,NAME\na,\"Main, HQ\"\nb,\n" {
		t.Fatalf("csv = %q", out.String())
	}
	if err := e.render([]byte(`{"a":`), call{}); err == nil {
		t.Fatal("truncated JSON rendered without error")
	}
}

// lineWatch signals once a written line contains want.
type lineWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan string
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for _, l := range strings.Split(w.buf.String(), "\n") {
		if strings.Contains(l, w.want) && w.seen != nil {
			w.seen <- l
			w.seen = nil
		}
	}
	return len(p), nil
}

// serveFirstLine runs orchard serve on a fresh data folder until it logs a
// line containing want, stops it, and returns that line.
func serveFirstLine(t *testing.T, want string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &lineWatch{want: want, seen: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--public-url", "https://127.0.0.1:8443"}, io.Discard, w)
	}()
	var line string
	select {
	case line = <-w.seen:
	case err := <-done:
		cancel()
		t.Fatalf("serve ended before serving: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	return line
}

// orchard serve logs its version in the line that says it is serving.
func TestServeLogsVersion(t *testing.T) {
	line := serveFirstLine(t, "orchard serving")
	if !strings.Contains(line, `version="`+version.Get().String()+`"`) {
		t.Fatalf("start line %q has no version", line)
	}
}

// Flags and arguments mix in any order; a value flag takes the next word
// even when it looks like a flag; "--" ends the flags.
func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args             []string
		pos              []string
		set, limit, name string
		confirm          bool
	}{
		{[]string{"a", "--set", "k=v", "b"}, []string{"a", "b"}, "k=v", "1", "", false},
		{[]string{"--confirm", "a", "-limit=5", "b", "--name", "-x"}, []string{"a", "b"}, "", "5", "-x", true},
		{[]string{"a", "--", "--set", "b"}, []string{"a", "--set", "b"}, "", "1", "", false},
		{[]string{"-", "--confirm=false"}, []string{"-"}, "", "1", "", false},
	} {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		set := fs.String("set", "", "")
		limit := fs.Int("limit", 1, "")
		name := fs.String("name", "", "")
		confirm := fs.Bool("confirm", false, "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != strings.Join(tc.pos, " ") || *set != tc.set || fmt.Sprint(*limit) != tc.limit || *name != tc.name || *confirm != tc.confirm {
			t.Errorf("%q: pos %q set %q limit %d name %q confirm %v err %v", tc.args, pos, *set, *limit, *name, *confirm, err)
		}
	}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("set", "", "")
	if _, err := parseInterleaved(fs, []string{"a", "--nope"}); err == nil {
		t.Error("unknown flag accepted")
	}
}

// On a terminal, --all redraws one progress line on stderr and ends it
// with a newline; stdout is only the data.
func TestAllProgressOnTerminal(t *testing.T) {
	s := servertest.Start(t)
	seed(t, s, 5)
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, tty: true, root: rootCommand()}
	if err := e.execute(context.Background(), []string{"devices", "list", "--all", "--limit", "2", "-o", "csv", "--data", s.Dir, "--server", s.URL}); err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); got != "\rfetching devices: 2 (page 1)\rfetching devices: 4 (page 2)\rfetching devices: 5 (page 3)\n" {
		t.Fatalf("progress %q", got)
	}
	if n := strings.Count(out.String(), "\n"); n != 6 {
		t.Fatalf("%d CSV lines:\n%s", n, out.String())
	}
}

// A broken server that answers the same cursor again stops --all with an
// error instead of paging forever.
func TestAllStopsOnRepeatedCursor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"devices":[{"id":"x"}],"next":"x"}`))
	}))
	defer srv.Close()
	_, errOut, code := cli(t, "devices", "list", "--all", "--server", srv.URL, "--api-key", "k")
	if code != exitError || !strings.Contains(errOut, "same cursor") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
