package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/apns/apnstest"
)

// push-cert sign-request, with the chain split over --vendor-cert and
// --chain, writes the portal's file: signed by the vendor key over the
// CSR the csr command wrote. Without the key it is a usage error.
func TestCLIPushCertSignRequest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	v, err := apnstest.NewVendor()
	if err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	vendorOnly := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.Chain[0].Raw})
	os.WriteFile(p("vendor.pem"), vendorOnly, 0o600)
	os.WriteFile(p("rest.pem"), bytes.TrimPrefix(v.ChainPEM, vendorOnly), 0o600)
	os.WriteFile(p("vendor.key"), v.KeyPEM, 0o600)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"push-cert", "csr", "--data", p("data"), "-o", p("push.csr")}, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	if err := run(ctx, []string{"push-cert", "sign-request", "--csr", p("push.csr"), "--vendor-cert", p("vendor.pem"),
		"--chain", p("rest.pem"), "--vendor-key", p("vendor.key"), "-o", p("req.b64")}, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	b64, _ := os.ReadFile(p("req.b64"))
	doc, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		t.Fatal(err)
	}
	var req struct{ PushCertRequestCSR, PushCertCertificateChain, PushCertSignature string }
	if err := plist.Unmarshal(doc, &req); err != nil {
		t.Fatal(err)
	}
	csrPEM, _ := os.ReadFile(p("push.csr"))
	block, _ := pem.Decode(csrPEM)
	if req.PushCertRequestCSR != base64.StdEncoding.EncodeToString(block.Bytes) {
		t.Error("the request carries another CSR")
	}
	if req.PushCertCertificateChain != string(v.ChainPEM) {
		t.Error("the request's chain is not vendor, intermediate, root")
	}
	sig, _ := base64.StdEncoding.DecodeString(req.PushCertSignature)
	sum := sha256.Sum256(block.Bytes)
	if err := rsa.VerifyPKCS1v15(&v.Key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signature: %v", err)
	}
	err = run(ctx, []string{"push-cert", "sign-request", "--csr", p("push.csr"), "--vendor-cert", p("vendor.pem")}, &out, &errOut)
	if exitCode(err) != exitUsage {
		t.Errorf("without --vendor-key: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
}
