package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/pki"
)

// docExample is one orchard command line found in the docs.
type docExample struct {
	file string
	line int
	text string
}

var inlineCmd = regexp.MustCompile("`((?:bin/)?orchard [^`]+)`")

// docExamples finds every orchard command in README.md and docs/*.md: the
// lines of ```sh blocks that start with orchard or bin/orchard, and inline
// code spans that do.
func docExamples(t *testing.T) []docExample {
	t.Helper()
	files := []string{"../../README.md"}
	more, _ := filepath.Glob("../../docs/*.md")
	files = append(files, more...)
	var out []docExample
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "../../")
		inSh := false
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			l := strings.TrimSpace(lines[i])
			if strings.HasPrefix(l, "```") {
				inSh = !inSh && (l == "```sh" || l == "```bash")
				continue
			}
			if inSh {
				if strings.HasPrefix(l, "orchard ") || strings.HasPrefix(l, "bin/orchard ") {
					text, n := l, i
					for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
						i++
						text = strings.TrimSuffix(text, `\`) + " " + strings.TrimSpace(lines[i])
					}
					out = append(out, docExample{name, n + 1, text})
				}
				continue
			}
			for _, m := range inlineCmd.FindAllStringSubmatch(l, -1) {
				out = append(out, docExample{name, i + 1, m[1]})
			}
		}
	}
	return out
}

// shellWords splits a command line as sh would for what the docs use:
// quotes, a trailing # comment and a > redirection of stdout.
func shellWords(s string) (words []string, stdoutFile string, err error) {
	var cur strings.Builder
	have, quote, redirect := false, rune(0), false
	flush := func() {
		if have {
			if redirect {
				stdoutFile, redirect = cur.String(), false
			} else {
				words = append(words, cur.String())
			}
		}
		cur.Reset()
		have = false
	}
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, have = r, true
		case r == ' ' || r == '\t':
			flush()
		case r == '#' && !have:
			flush()
			return words, stdoutFile, nil
		case r == '>' && !have:
			redirect = true
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if quote != 0 {
		return nil, "", errors.New("unterminated quote")
	}
	flush()
	return words, stdoutFile, nil
}

// runsUntilStopped are the commands that serve until Ctrl-C: the docs test
// parses their lines instead of running them (TestDemo and TestSimulate
// run demo and simulate; serve runs in every server test). migrate is
// parsed too: it needs a stopped server and PostgreSQL (TestCLIMigrate).
var runsUntilStopped = map[string]bool{"serve": true, "demo": true, "simulate": true, "migrate": true}

// Every orchard command in README.md and docs/ runs against a real server
// with real data (an enrolled device, a queued command, an ABM token on the
// fake of Apple's service, a push certificate) and exits 0; the commands
// that would not return (runsUntilStopped) are parsed and checked instead. A doc example with a
// syntax the CLI does not have fails here.
func TestDocumentedCommands(t *testing.T) {
	ctx := context.Background()
	examples := docExamples(t)
	if len(examples) < 20 {
		t.Fatalf("found only %d examples in the docs", len(examples))
	}

	apple := deptest.NewServer(t, deptest.NewToken(), 3)
	tok := deptest.NewToken()
	apple.AddToken(tok)
	fakeAPNs := apnstest.NewServer(servertest.PushCert(t, testTopic).Leaf)
	t.Cleanup(fakeAPNs.Close)
	apnsCA := filepath.Join(t.TempDir(), "apns-ca.pem")
	os.WriteFile(apnsCA, fakeAPNs.CertPEM(), 0o600)
	s := servertest.Start(t, func(c *server.Config) { c.DEPURL, c.APNsURL, c.APNsCA = apple.URL, fakeAPNs.URL(), apnsCA })

	// The documented push-cert upload renews the certificate of testTopic.
	s.UsePushTopic(t, testTopic)
	dev := s.NewDevice(t)
	dev.Topic = testTopic
	s.Enroll(t, dev)
	// The device answers an app and a profile list, so devices apps and
	// devices profiles have something to show ...
	for _, rt := range []string{"InstalledApplicationList", "ProfileList"} {
		s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{dev.UDID}, "request_type": rt}, nil)
	}
	if _, err := dev.Drain(ctx, func(c *simdevice.Command) (string, map[string]any) {
		switch c.RequestType {
		case "InstalledApplicationList":
			return "Acknowledged", map[string]any{"InstalledApplicationList": []any{map[string]any{"Identifier": "com.example.notes", "Name": "Notes", "ShortVersion": "1.0"}}}
		case "ProfileList":
			return "Acknowledged", map[string]any{"ProfileList": []any{map[string]any{"PayloadIdentifier": "com.orchardmdm.enrollment", "PayloadDisplayName": "Orchard"}}}
		}
		return dev.Answer(c)
	}); err != nil {
		t.Fatal(err)
	}
	// ... and one command stays queued for commands show and cancel.
	var sent struct {
		CommandUUID string `json:"command_uuid"`
	}
	s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{dev.UDID}, "request_type": "CertificateList"}, &sent)
	block, _ := pem.Decode(s.Get(t, "/v1/dep/public-key"))
	depCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var token struct {
		ID string `json:"id"`
	}
	if code := s.API(t, "POST", "/v1/dep/tokens", map[string]any{"name": "Main", "token": string(deptest.P7M(t, depCert, tok))}, &token); code != http.StatusCreated {
		t.Fatalf("token upload = %d", code)
	}
	// An admin with an API token, for the tokens examples of docs/admins.md.
	if code := s.API(t, "POST", "/v1/admins", map[string]any{"username": "ci-bot", "role": "admin", "password": "docs-test-password"}, nil); code != http.StatusCreated {
		t.Fatalf("create ci-bot = %d", code)
	}
	var apiToken struct{ ID string }
	if code := s.API(t, "POST", "/v1/admins/ci-bot/tokens", map[string]any{"name": "deploy"}, &apiToken); code != http.StatusCreated {
		t.Fatalf("ci-bot token = %d", code)
	}
	work := t.TempDir()
	t.Chdir(work)
	// A real Wi-Fi profile: docs/profiles.md uploads it to the library.
	wifi := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadIdentifier</key><string>com.example.wifi</string>
<key>PayloadUUID</key><string>3B9C2A6E-1F0D-4C55-9E0B-7A1D2C3E4F50</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadDisplayName</key><string>Office Wi-Fi</string>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>com.apple.wifi.managed</string>
<key>PayloadIdentifier</key><string>com.example.wifi.office</string>
<key>PayloadUUID</key><string>3B9C2A6E-1F0D-4C55-9E0B-7A1D2C3E4F51</string>
<key>PayloadVersion</key><integer>1</integer>
<key>SSID_STR</key><string>Office</string>
<key>EncryptionType</key><string>WPA2</string>
<key>Password</key><string>example only</string>
</dict></array>
</dict></plist>
`)
	os.WriteFile("wifi.mobileconfig", wifi, 0o600)
	// The files docs/users.md imports.
	os.WriteFile("ann.pw", []byte("correct horse battery\n"), 0o600)
	os.WriteFile("users.csv", []byte("username,display_name,email,password\nbob,Bob Example,bob@example.com,\ncy,Cy Example,cy@example.com,cy-secret-pass\n"), 0o600)
	os.WriteFile("sales.csv", []byte("username\nbob\ncy\n"), 0o600)
	// docs/webhooks.md: an endpoint to look at, and the secret file of the
	// one it creates (its topic never fires here, so nothing is posted).
	os.WriteFile("hook.secret", []byte("docs-test-hmac-key\n"), 0o600)
	var hook struct{ ID string }
	if code := s.API(t, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "topics": []string{"orchard.renewal.failed"}}, &hook); code != http.StatusCreated {
		t.Fatalf("create webhook = %d", code)
	}
	os.WriteFile("corp-serials.csv", []byte("C02XK1JHJG5J,Design lab iMac\nF9FZK2ABCD12,Loaner iPad 4\n"), 0o600)
	os.WriteFile("default-platform.json", []byte(`{"name": "Default platform restrictions",
		"platforms": {"iOS": {"min_os": "17.0"}, "macOS": {"block_personal": true, "min_os": "14.0"}}}`), 0o600)
	os.WriteFile("contractors-limit.json", []byte(`{"kind": "limit", "name": "Contractors", "priority": 1,
		"groups": ["contractors"], "device_limit": 1}`), 0o600)
	placeholders := strings.NewReplacer(
		"<udid>", dev.UDID,
		"<command-uuid>", sent.CommandUUID,
		"<token-id>", token.ID,
		"<api-token-id>", apiToken.ID,
		"<webhook-id>", hook.ID,
		"$(base64 < wifi.mobileconfig)", base64.StdEncoding.EncodeToString(wifi),
	)

	t.Logf("running %d documented command lines", len(examples))
	for _, ex := range examples {
		where := ex.file + ":" + strconv.Itoa(ex.line) + ": " + ex.text
		words, stdoutFile, err := shellWords(placeholders.Replace(ex.text))
		if err != nil || len(words) < 2 {
			t.Errorf("%s: cannot split: %v", where, err)
			continue
		}
		args := words[1:]
		if strings.Contains(ex.text, "<") && strings.Contains(placeholders.Replace(ex.text), "<") {
			t.Errorf("%s: a placeholder the test does not fill", where)
			continue
		}
		node, _, rest, err := resolve(rootCommand(), args)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if runsUntilStopped[node.name] {
			fs := flag.NewFlagSet(node.name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			e := &env{}
			node.setup(fs, e)
			e.globalFlags(fs)
			if pos, err := parseInterleaved(fs, rest); err != nil || len(pos) != 0 {
				t.Errorf("%s: %v %q", where, err, pos)
			}
			continue
		}
		prepare(t, s, fakeAPNs, node, args)
		if node.name == "sync" {
			rewindManualSync(t, s, token.ID)
		}
		// restore and backup --offline act on the data dir they name, which
		// must not be the running server's.
		if ownDataDir(node, args) {
			args = append(args, "--server", s.URL)
		} else {
			args = append(args, "--data", s.Dir, "--server", s.URL)
		}
		var out, errOut bytes.Buffer
		if err := run(ctx, args, &out, &errOut); err != nil {
			t.Errorf("%s: exit %d: %v (%s)", where, exitCode(err), err, errOut.String())
			continue
		}
		if stdoutFile != "" {
			// Paths like /etc/bash_completion.d/ land in the work dir.
			if err := os.WriteFile(filepath.Base(stdoutFile), out.Bytes(), 0o600); err != nil || out.Len() == 0 {
				t.Errorf("%s: nothing to write to %s", where, stdoutFile)
			}
		}
	}
}

// Every command of the tree has at least one example in the docs, so the
// docs test runs each.
func TestEveryCommandDocumented(t *testing.T) {
	documented := map[string]bool{}
	for _, ex := range docExamples(t) {
		words, _, err := shellWords(ex.text)
		if err != nil || len(words) < 2 {
			continue
		}
		if _, path, _, err := resolve(rootCommand(), words[1:]); err == nil {
			documented[strings.Join(path, " ")] = true
		}
	}
	walk(rootCommand(), []string{"orchard"}, func(c *command, path []string) {
		if c.setup != nil && !c.hidden && !documented[strings.Join(path, " ")] {
			t.Errorf("%s has no example in README.md or docs/", strings.Join(path, " "))
		}
	})
}

// prepare stands in for what a person does between two documented steps:
// before an upload, Apple signs the push certificate for the CSR's key.
func prepare(t *testing.T, s *servertest.Server, fake *apnstest.Server, node *command, args []string) {
	t.Helper()
	keyPath := filepath.Join(s.Dir, pushCSRKey)
	switch {
	case node.name == "csr":
		os.Remove(keyPath) // each documented csr starts a fresh request
	case node.name == "sign-request":
		// The CSR from the csr step, and a vendor chain as Apple would issue it.
		if _, err := os.Stat("push.csr"); err != nil {
			if err := writePushCSR(t.TempDir(), "Orchard MDM", "it@example.com", "push.csr", io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		v, err := apnstest.NewVendor()
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile("mdm-vendor-chain.pem", v.ChainPEM, 0o600)
		os.WriteFile("mdm-vendor.key", v.KeyPEM, 0o600)
	case ownDataDir(node, args):
		dir := flagValue(args, "--data")
		if dir == "" || filepath.IsAbs(dir) {
			t.Fatalf("%v: name a relative --data, the test runs it in its work dir", args)
		}
		os.RemoveAll(dir)
		if node.name == "backup" {
			// A stopped server's data dir: a database no one holds.
			st, err := server.OpenBolt(dir)
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
		} else if from := flagValue(args, "--from"); from != "" {
			if _, err := os.Stat(from); err != nil {
				var out, errOut bytes.Buffer
				if err := run(context.Background(), []string{"backup", "--to", from, "--data", s.Dir, "--server", s.URL}, &out, &errOut); err != nil {
					t.Fatalf("backup for %v: %v %s", args, err, errOut.String())
				}
			}
		}
	case node.name == "upload" && slices.Contains(args, "MDM_Certificate.pem"):
		if _, err := os.Stat(keyPath); err != nil {
			if err := writePushCSR(s.Dir, "Orchard MDM", "it@example.com", filepath.Join(t.TempDir(), "push.csr"), io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		keyPEM, err := os.ReadFile(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		key, err := pki.ParsePrivateKeyPEM(keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		certPEM := signPushCert(t, key.Public())
		block, _ := pem.Decode(certPEM)
		leaf, _ := x509.ParseCertificate(block.Bytes)
		fake.Trust(leaf)
		os.WriteFile("MDM_Certificate.pem", certPEM, 0o600)
	}
}

// rewindManualSync makes the last manual sync of a token 16 minutes old, as
// if the docs' steps were a while apart: dep sync is allowed once every 15
// minutes, and both README.md and docs/dep.md show it.
func rewindManualSync(t *testing.T, s *servertest.Server, id string) {
	t.Helper()
	ctx := context.Background()
	st, err := s.Store().DEPSyncState(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastManual.IsZero() {
		st.LastManual = st.LastManual.Add(-16 * time.Minute)
		if err := s.Store().PutDEPSyncState(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
}

// ownDataDir tells the commands whose --data is theirs to choose.
func ownDataDir(node *command, args []string) bool {
	return node.name == "restore" || (node.name == "backup" && slices.Contains(args, "--offline"))
}

// flagValue is the value after name in args ("" when absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
