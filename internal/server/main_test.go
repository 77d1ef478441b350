package server_test

import (
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
)

// TestMain stops the PostgreSQL server the postgres half of the suite starts.
func TestMain(m *testing.M) { pgtest.Main(m) }
