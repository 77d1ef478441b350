package mdmhttp_test

import (
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
)

// TestMain stops the PostgreSQL server BenchmarkBackends may start.
func TestMain(m *testing.M) { pgtest.Main(m) }
