package server_test

import (
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// TestStoreOpener maps --storage and --storage-dsn to a backend, refusing
// combinations that cannot be meant.
func TestStoreOpener(t *testing.T) {
	for _, bad := range [][2]string{{"postgres", ""}, {"bolt", "postgres://db/x"}, {"mysql", ""}} {
		if _, err := server.StoreOpener(bad[0], bad[1]); err == nil {
			t.Errorf("--storage %q --storage-dsn %q accepted", bad[0], bad[1])
		} else if strings.Contains(err.Error(), "postgres://db/x") {
			t.Errorf("error repeats the DSN: %v", err)
		}
	}
	open, err := server.StoreOpener("postgres", pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*postgres.Store); !ok {
		t.Errorf("--storage postgres opened a %T", s)
	}
}
