package servertest

import (
	"context"
	"fmt"
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
	// Each replica's sessions carry its name (ReplicaName), so a test can
	// find them in pg_stat_activity.
	opener := func(i int) func(string) (storage.Store, error) {
		return func(string) (storage.Store, error) {
			return postgres.Open(context.Background(), dsn+"&application_name="+ReplicaName(i), postgres.Options{})
		}
	}
	first := Start(t, append([]func(*server.Config){WithStore(opener(0))}, mutate...)...)
	out := []*Server{first}
	for i := 1; i < n; i++ {
		dir := t.TempDir()
		if err := copyDir(first.Dir, dir); err != nil {
			t.Fatal(err)
		}
		withDir := func(c *server.Config) { c.DataDir = dir }
		out = append(out, Start(t, append([]func(*server.Config){WithStore(opener(i)), withDir}, mutate...)...))
	}
	return out
}

// ReplicaName is the PostgreSQL application_name of replica i's sessions.
func ReplicaName(i int) string { return fmt.Sprintf("orchard-replica-%d", i) }

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
