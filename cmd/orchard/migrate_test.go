package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
	"github.com/orchardmdm/orchard/storage/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestCLIMigrate copies a bbolt file into PostgreSQL through the command
// line, then refuses to copy it again into the now non-empty database.
func TestCLIMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "orchard.db")
	src, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
		ID: "D1", DeviceID: "D1", Type: storage.Device, CertHash: "h1", EnrolledAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dsn := pgtest.DSN(t)
	args := []string{"migrate", "--from", "bolt:" + path, "--to", "postgres:" + dsn}
	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "counts verified") {
		t.Errorf("output does not say the counts were verified:\n%s", out.String())
	}
	if strings.Contains(out.String(), dsn) {
		t.Errorf("output repeats the DSN (it can hold a password)")
	}
	dst, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if e, err := dst.Enrollment(ctx, "D1"); err != nil || !e.Enrolled {
		t.Fatalf("migrated enrollment = %+v, %v", e, err)
	}
	err = run(ctx, args, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("second migrate into a non-empty database: %v, want a refusal naming --overwrite", err)
	}
	for _, bad := range [][]string{{"migrate", "--from", path, "--to", "postgres:" + dsn}, {"migrate", "--from", "bolt:" + path, "--to", dsn}} {
		if err := run(ctx, bad, &out, &errOut); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
