package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/orchardmdm/orchard/internal/backup"
	"github.com/orchardmdm/orchard/internal/version"
)

// backupSetup writes a backup archive: through the running server (GET
// /v1/backup, the database is locked by it), or with --offline straight
// from a stopped server's data dir. The file is checked against its
// manifest before it takes its name, so FILE is never a partial archive.
func backupSetup(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	to := fs.String("to", "", "`file` to write the archive to (it holds every key: keep it safe)")
	offline := fs.Bool("offline", false, "read the data dir directly, for a server that is not running")
	return func(ctx context.Context, _ []string) error {
		if *to == "" {
			return usagef("orchard backup", "--to is required")
		}
		partial := *to + ".partial"
		f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer os.Remove(partial) // a no-op once renamed
		if *offline {
			err = writeOffline(e.data, f)
		} else {
			err = writeOnline(ctx, e, f)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		m, err := verifyFile(partial)
		if err != nil {
			return fmt.Errorf("the archive received does not check out: %w", err)
		}
		if err := os.Rename(partial, *to); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(*to)); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s: %d files (the database and keys); keep it as safe as the data dir\n", *to, len(m.Files))
		for _, s := range m.Skipped {
			fmt.Fprintf(e.stderr, "left out %s (not a key file: over 1 MiB or not a regular file)\n", s)
		}
		return nil
	}
}

func writeOnline(ctx context.Context, e *env, f *os.File) error {
	c, err := e.newClient()
	if err != nil {
		return err
	}
	// The download takes as long as it takes: no overall client timeout.
	hc := *c.api.HTTP
	hc.Timeout = 0
	api := *c.api
	api.HTTP = &hc
	_, err = api.Stream(ctx, "/v1/backup", f)
	return err
}

func writeOffline(data string, f *os.File) error {
	o, err := backup.OpenOffline(data)
	if err != nil {
		return err
	}
	defer o.Close()
	_, err = backup.Write(f, data, o, version.Get().String())
	return err
}

func verifyFile(path string) (*backup.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return backup.Verify(f)
}

// restoreSetup restores an archive into --data.
func restoreSetup(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	from := fs.String("from", "", "`file`: the archive orchard backup wrote")
	force := fs.Bool("force", false, "restore into a data dir that is not empty (its files of the same names are replaced)")
	return func(ctx context.Context, _ []string) error {
		if *from == "" {
			return usagef("orchard restore", "--from is required")
		}
		f, err := os.Open(*from)
		if err != nil {
			return err
		}
		defer f.Close()
		m, err := backup.Restore(f, e.data, *force)
		if errors.Is(err, backup.ErrNotEmpty) {
			return usagef("orchard restore", "%s: %w", e.data, err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "restored %d files into %s (backup of %s); start it with: orchard serve --data %s\n",
			len(m.Files), e.data, m.Created.Format("2006-01-02 15:04 UTC"), e.data)
		return nil
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
