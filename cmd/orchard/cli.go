package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/orchardmdm/orchard/internal/apiclient"
)

// command is one node of the CLI tree: a group (subs set) or a leaf (setup
// set). The tree gives help at every level, completion and the docs test.
type command struct {
	name     string
	summary  string   // one line, lower case, no period
	args     []string // positional arguments of a leaf, e.g. "<udid>"
	variadic bool     // the last argument repeats (zero or more)
	help     string   // more text for --help, optional
	examples []string // full command lines, run by the docs test when docs show them
	// local commands do not call the API: their help shows only --data of
	// the global flags (all are still accepted, so a line can set them once).
	local bool
	// setup registers the leaf's flags and returns what runs once they
	// are parsed; args are the positional arguments, checked for count.
	setup func(fs *flag.FlagSet, e *env) func(ctx context.Context, args []string) error
	subs  []*command
	// hidden leaves are not listed in help (e.g. __complete).
	hidden bool
	// raw leaves take every word as an argument, flags included.
	raw bool
}

// env is what every command shares: output streams and global flags.
type env struct {
	stdout, stderr io.Writer
	tty            bool // stderr is a terminal: progress may redraw a line
	root           *command

	data, server, apiKey, output string
}

// Exit codes, documented in docs/cli.md.
const (
	exitOK       = 0
	exitError    = 1 // anything else: local I/O, bad answer
	exitUsage    = 2 // the command line is wrong
	exitNotFound = 3 // the server answered 404
	exitRefused  = 4 // the server refused the request (other 4xx), or some targets of a bulk command
	exitServer   = 5 // the server failed (5xx) or could not be reached
)

// usageError is a wrong command line: exit 2, with a hint to --help.
type usageError struct {
	path string // "orchard devices list"
	err  error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(path, format string, a ...any) error {
	return &usageError{path: path, err: fmt.Errorf(format, a...)}
}

// errRefusedTargets reports a bulk command some targets refused; the answer
// is already printed.
var errRefusedTargets = errors.New("some targets were refused")

// exitCode maps an error to the exit codes scripts can rely on.
func exitCode(err error) int {
	var ue *usageError
	var se *apiclient.StatusError
	var ne net.Error
	var ue2 *url.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &se):
		switch {
		case se.Code == 404:
			return exitNotFound
		case se.Code >= 400 && se.Code < 500:
			return exitRefused
		}
		return exitServer
	case errors.Is(err, errRefusedTargets):
		return exitRefused
	case errors.As(err, &ue2), errors.As(err, &ne):
		return exitServer
	}
	return exitError
}

// globalFlags are accepted before or after the command; a leaf that defines
// one of these names itself (enroll profile's -o file) keeps its own.
func (e *env) globalFlags(fs *flag.FlagSet) {
	def := func(p *string, name, envKey, value, usage string) {
		if fs.Lookup(name) != nil {
			return
		}
		if v, ok := os.LookupEnv(envKey); ok {
			value = v
		}
		if envKey != "" {
			usage += " (env " + envKey + ")"
		}
		fs.StringVar(p, name, value, usage)
	}
	def(&e.data, "data", "ORCHARD_DATA", "orchard-data", "data directory: API key and TLS certificate")
	def(&e.server, "server", "ORCHARD_SERVER", "https://localhost:8443", "Orchard server URL")
	def(&e.apiKey, "api-key", "ORCHARD_API_KEY", "", "admin API key (default: <data>/api-key)")
	def(&e.output, "output", "", "table", "output format: table, json or csv")
	def(&e.output, "o", "", "table", "short for --output")
}

// globalValueFlags are the global flags that take a value, so the tree walk
// can skip their values before the command name.
var globalValueFlags = []string{"data", "server", "api-key", "output", "o"}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// resolve walks args down the tree: words name subcommands until a leaf;
// flags met on the way are kept for the leaf, in order.
func resolve(root *command, args []string) (node *command, path []string, rest []string, err error) {
	node, path = root, []string{root.name}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if node.subs == nil {
			return node, path, append(rest, args[i:]...), nil
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			rest = append(rest, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && slices.Contains(globalValueFlags, name) && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		sub := node.sub(a)
		if sub == nil {
			return node, path, rest, usagef(strings.Join(path, " "), "unknown command %q for %q", a, strings.Join(path, " "))
		}
		node, path = sub, append(path, sub.name)
	}
	return node, path, rest, nil
}

func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// execute runs one command line.
func (e *env) execute(ctx context.Context, args []string) error {
	node, path, rest, err := resolve(e.root, args)
	name := strings.Join(path, " ")
	if err != nil {
		return err
	}
	if node.subs != nil {
		if slices.ContainsFunc(rest, isHelp) {
			e.printHelp(e.stdout, node, path)
			return nil
		}
		e.printHelp(e.stderr, node, path)
		return usagef(name, "%q needs a command", name)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	runFn := node.setup(fs, e)
	if node.raw {
		return runFn(ctx, rest)
	}
	e.globalFlags(fs)
	pos, err := parseInterleaved(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		e.printHelp(e.stdout, node, path)
		return nil
	}
	if err != nil {
		return &usageError{path: name, err: err}
	}
	n := len(node.args)
	if node.variadic && len(pos) < n-1 || !node.variadic && len(pos) != n {
		want := fmt.Sprintf("%d argument(s)", n)
		if n > 0 {
			want += " (" + strings.Join(node.args, " ") + ")"
		}
		return usagef(name, "%s takes %s, got %d", name, want, len(pos))
	}
	switch e.output {
	case "", "table", "json", "csv":
	default:
		return usagef(name, "--output %q: want table, json or csv", e.output)
	}
	return runFn(ctx, pos)
}

// parseInterleaved parses flags wherever they stand among the positional
// arguments (Go's flag package stops at the first non-flag); "--" ends the
// flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

func (c *command) usageLine(path []string) string {
	u := strings.Join(path, " ")
	if c.subs != nil {
		return u + " <command> [flags]"
	}
	for i, a := range c.args {
		if c.variadic && i == len(c.args)-1 {
			a = "[" + a + "...]"
		}
		u += " " + a
	}
	return u + " [flags]"
}

// printHelp writes a command's help: summary, usage, subcommands or flags,
// and examples.
func (e *env) printHelp(w io.Writer, c *command, path []string) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n", capitalize(c.summary), c.usageLine(path))
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.help, "\n"))
	}
	if c.subs != nil {
		fmt.Fprintf(w, "\nCommands:\n")
		width := 0
		for _, s := range c.subs {
			width = max(width, len(s.name))
		}
		for _, s := range c.subs {
			if !s.hidden {
				fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.summary)
			}
		}
	} else {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		c.setup(fs, &env{})
		own := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
		printFlags(w, "Flags", fs, nil)
		g := flag.NewFlagSet("", flag.ContinueOnError)
		(&env{}).globalFlags(g)
		if c.local {
			g.VisitAll(func(f *flag.Flag) { own[f.Name] = own[f.Name] || f.Name != "data" })
		}
		printFlags(w, "Global flags (before or after the command)", g, own)
	}
	if len(c.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, ex := range c.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
	if c.subs != nil {
		fmt.Fprintf(w, "\nRun %q for a command's arguments, flags and examples.\n", strings.Join(path, " ")+" <command> --help")
	}
}

func printFlags(w io.Writer, title string, fs *flag.FlagSet, skip map[string]bool) {
	var lines [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		if skip[f.Name] {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		left := dash + f.Name
		if name != "" {
			left += " " + name
		}
		switch {
		case f.DefValue == "" || f.DefValue == "false" || f.DefValue == "0" && name != "int":
		case name == "string":
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		default:
			usage += " (default " + f.DefValue + ")"
		}
		lines = append(lines, [2]string{left, usage})
	})
	if len(lines) == 0 {
		return
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0]))
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s  %s\n", width, l[0], l[1])
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}
