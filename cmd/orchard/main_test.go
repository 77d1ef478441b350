package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/pki"
)

// The CLI against a real server: it finds the API key and TLS certificate
// in the data dir, sends a command built from --set flags, and shows it.
func TestCLICommandsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	cli := func(args ...string) []byte {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append(args[:2:2], append([]string{"--data", s.Dir, "--server", s.URL, "-o", "json"}, args[2:]...)...)
		if err := run(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("orchard %s: %v (%s)", strings.Join(args, " "), err, errOut.String())
		}
		return out.Bytes()
	}
	// The profile the CLI downloads enrolls a device through SCEP.
	file := filepath.Join(t.TempDir(), "enroll.mobileconfig")
	cli("enroll", "profile", "-o", file)
	profile, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dev := s.NewDevice(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.EnrollFromProfile(ctx, profile, key, s.Client); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, dev)
	var list struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(cli("devices", "list"), &list); err != nil || len(list.Devices) != 1 || list.Devices[0].ID != dev.UDID {
		t.Fatalf("devices list = %+v %v", list, err)
	}
	var released struct {
		ID            string `json:"id"`
		ReleasedUntil string `json:"released_until"`
	}
	if err := json.Unmarshal(cli("devices", "release", dev.UDID), &released); err != nil || released.ID != dev.UDID || released.ReleasedUntil == "" {
		t.Fatalf("devices release = %+v %v", released, err)
	}
	if e, err := s.Store().Enrollment(ctx, dev.UDID); err != nil || e.ReleasedUntil.IsZero() {
		t.Fatalf("release not stored: %+v %v", e, err)
	}
	var sent struct {
		CommandUUID string `json:"command_uuid"`
	}
	out := cli("commands", "send", "--udid", dev.UDID, "--type", "DeviceLock", "--set", "Message=Call IT", "--set", "PIN=123456")
	if err := json.Unmarshal(out, &sent); err != nil || sent.CommandUUID == "" {
		t.Fatalf("commands send = %s %v", out, err)
	}
	cmd, err := dev.Idle(ctx)
	if err != nil || cmd == nil || cmd.RequestType != "DeviceLock" || cmd.Payload["PIN"] != "123456" || cmd.Payload["Message"] != "Call IT" {
		t.Fatalf("device received %+v %v", cmd, err)
	}
	if _, err := dev.Report(ctx, "Acknowledged", cmd.UUID, nil); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Targets []struct {
			Status string `json:"status"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(cli("commands", "show", sent.CommandUUID), &shown); err != nil || shown.Targets[0].Status != "Acknowledged" {
		t.Fatalf("commands show = %+v %v", shown, err)
	}
	// A remote action through the CLI reaches the device as its command;
	// a destructive one needs --confirm.
	var action struct {
		CommandUUID string `json:"command_uuid"`
	}
	if err := json.Unmarshal(cli("devices", "action", "--set", "name=Front Desk", dev.UDID, "rename"), &action); err != nil || action.CommandUUID == "" {
		t.Fatalf("rename action: %+v %v", action, err)
	}
	if cmd, err := dev.Idle(ctx); err != nil || cmd == nil || cmd.RequestType != "Settings" {
		t.Fatalf("device received %+v %v", cmd, err)
	}
	var errOut bytes.Buffer
	if err := run(ctx, []string{"devices", "action", "--data", s.Dir, "--server", s.URL, dev.UDID, "retire"}, &bytes.Buffer{}, &errOut); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("retire without --confirm: %v", err)
	}
	// A wrong key is refused by the server, and the CLI says so.
	errOut.Reset()
	if err := run(ctx, []string{"devices", "list", "--data", s.Dir, "--server", s.URL, "--api-key", "wrong"}, &bytes.Buffer{}, &errOut); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong key: %v", err)
	}
}

// push-cert csr keeps the key in the data dir; upload --cert pairs the
// signed certificate with it; show reports the topic.
func TestCLIPushCertificate(t *testing.T) {
	ctx := context.Background()
	s := servertest.StartWithoutPushCert(t)
	var out, errOut bytes.Buffer
	csrFile := filepath.Join(t.TempDir(), "push.csr")
	if err := run(ctx, []string{"push-cert", "csr", "--data", s.Dir, "--email", "it@example.com", "-o", csrFile}, &out, &errOut); err != nil {
		t.Fatalf("csr: %v %s", err, errOut.String())
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.Dir, pushCSRKey))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir, pushCSRKey)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	// Stand in for the vendor and Apple: sign a push certificate for the
	// CSR's key.
	key, err := pki.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := signPushCert(t, key.Public())
	certFile := filepath.Join(t.TempDir(), "MDM_Certificate.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	out.Reset()
	if err := run(ctx, []string{"push-cert", "upload", "--data", s.Dir, "--server", s.URL, "--cert", certFile, "--apple-id", "it@example.com"}, &out, &errOut); err != nil {
		t.Fatalf("upload: %v %s", err, errOut.String())
	}
	out.Reset()
	if err := run(ctx, []string{"push-cert", "show", "--data", s.Dir, "--server", s.URL, "-o", "json"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Topic   string `json:"topic"`
		AppleID string `json:"apple_id"`
	}
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.Topic != testTopic || info.AppleID != "it@example.com" {
		t.Fatalf("show = %s %v", out.String(), err)
	}
	if strings.Contains(out.String(), "PRIVATE KEY") {
		t.Fatal("show revealed the key")
	}
}

const testTopic = "com.apple.mgmt.External.6a1c0f3e-1b2d-4c5e-8f90-123456789abc"

func signPushCert(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Apple Push CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		Subject:     pkix.Name{CommonName: "APSP:" + testTopic, ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, Value: testTopic}}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
