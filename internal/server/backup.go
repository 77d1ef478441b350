package server

import (
	"context"
	"io"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/backup"
	"github.com/orchardmdm/orchard/internal/version"
)

// dataDirBackup serves GET /v1/backup from a backend that can snapshot
// itself (bbolt); other backends have their own tools, and the route
// answers 503 there.
type dataDirBackup struct {
	dir  string
	snap backup.Snapshotter
}

func (b dataDirBackup) WriteBackup(_ context.Context, w io.Writer) error {
	_, err := backup.Write(w, b.dir, b.snap, version.Get().String())
	return err
}

func (s *Server) backup() adminapi.Backup {
	if snap, ok := s.store.(backup.Snapshotter); ok {
		return dataDirBackup{dir: s.cfg.DataDir, snap: snap}
	}
	return nil
}
