package adminapi

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Backup streams an archive of the data dir: the database snapshot and
// every key (the server, through internal/backup).
type Backup interface {
	WriteBackup(ctx context.Context, w io.Writer) error
}

// backupWriteTime is how long a backup download may take; the server's
// write timeout is meant for ordinary answers.
const backupWriteTime = time.Hour

// getBackup serves GET /v1/backup. The archive holds every secret of the
// server, so only the owner's API key reaches it. A failure half way can
// no longer change the status: the archive then ends without its manifest,
// which the CLI and restore refuse.
func (a *API) getBackup(w http.ResponseWriter, r *http.Request) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupWriteTime))
	name := "orchard-backup-" + time.Now().UTC().Format("20060102-150405") + ".tar"
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := a.backup.WriteBackup(r.Context(), w); err != nil {
		a.log.Error("backup failed part way; the archive sent is incomplete", "err", err)
	}
}
