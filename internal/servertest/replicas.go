package servertest

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// StartReplicas runs n servers on one fresh PostgreSQL schema, as replicas
// behind a proxy are run: each with a copy of the first one's data dir (the
// same CA, TLS, API and secret keys), each on its own port with its own
// fake APNs. A device made by one is served by all; the first replica's
// Client trusts every replica's TLS certificate (the same one).
func StartReplicas(t testing.TB, n int, mutate ...func(*server.Config)) []*Server {
	t.Helper()
	dsn := pgtest.Prepared(t, "orchard", migrated)
	open := func(string) (storage.Store, error) {
		return postgres.Open(context.Background(), dsn, postgres.Options{})
	}
	first := Start(t, append([]func(*server.Config){WithStore(open)}, mutate...)...)
	out := []*Server{first}
	for range n - 1 {
		dir := t.TempDir()
		if err := copyDir(first.Dir, dir); err != nil {
			t.Fatal(err)
		}
		withDir := func(c *server.Config) { c.DataDir = dir }
		out = append(out, Start(t, append([]func(*server.Config){WithStore(open), withDir}, mutate...)...))
	}
	return out
}

// copyDir copies the regular files of a data dir, keeping their modes.
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
}
