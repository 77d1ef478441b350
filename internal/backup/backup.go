// Package backup writes Orchard's data dir as one tar archive and restores
// it: a consistent snapshot of the database (one read transaction, taken
// while the server keeps serving), the key files next to it, and last a
// manifest with every file's SHA-256, so a cut or altered archive is
// refused before anything is restored. The archive holds every key Orchard
// has: it is as secret as the data dir itself.
package backup

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

const (
	// DBName is the database file in the data dir and the archive.
	DBName = "orchard.db"
	// ManifestName is the archive's last entry.
	ManifestName = "orchard-backup.json"
	// MaxKeyFile bounds every file but the database, in the archive and
	// when collecting them: keys and certificates are a few KiB.
	MaxKeyFile = 1 << 20
	format     = 1
)

// Manifest describes an archive.
type Manifest struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	Version string    `json:"version,omitempty"`
	Files   []File    `json:"files"`
	// Skipped names files of the data dir left out (over MaxKeyFile, or
	// not regular files).
	Skipped []string `json:"skipped,omitempty"`
}

// File is one archived file.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Snapshotter gives a consistent copy of the database (the bbolt store).
type Snapshotter interface {
	Snapshot(fn func(size int64, db io.WriterTo) error) error
}

// Write streams the archive of dataDir to w: the database from snap, then
// the other top-level files of the data dir, then the manifest.
func Write(w io.Writer, dataDir string, snap Snapshotter, version string) (*Manifest, error) {
	m := &Manifest{Format: format, Created: time.Now().UTC().Truncate(time.Second), Version: version}
	tw := tar.NewWriter(w)
	add := func(name string, size int64, body io.WriterTo) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o600, ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		h := sha256.New()
		n, err := body.WriteTo(io.MultiWriter(tw, h))
		if err != nil {
			return fmt.Errorf("backup: write %s: %w", name, err)
		}
		if n != size {
			return fmt.Errorf("backup: %s: wrote %d bytes, expected %d", name, n, size)
		}
		m.Files = append(m.Files, File{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	}
	if err := snap.Snapshot(func(size int64, db io.WriterTo) error { return add(DBName, size, db) }); err != nil {
		return nil, fmt.Errorf("backup: database: %w", err)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == DBName || strings.HasPrefix(name, DBName+".") || !validName(name) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		if !info.Mode().IsRegular() || info.Size() > MaxKeyFile {
			m.Skipped = append(m.Skipped, name)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dataDir, name))
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		if err := add(name, int64(len(data)), bytesWriterTo(data)); err != nil {
			return nil, err
		}
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Size: int64(len(js)), Mode: 0o600, ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(js); err != nil {
		return nil, err
	}
	return m, tw.Close()
}

type bytesWriterTo []byte

func (b bytesWriterTo) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// validName admits the plain file names an archive may hold: no paths, no
// hidden files (the restore's staging dir is one).
func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, `/\`) && !strings.HasPrefix(name, ".") && len(name) <= 255
}

// Offline is the database of a data dir no server is running on, opened
// read-only for a backup.
type Offline struct{ db *bolt.DB }

// ErrInUse means a server holds the database: back up through it.
var ErrInUse = errors.New("the database is in use (is orchard serve running? back up through the server instead)")

// OpenOffline opens dataDir's database read-only.
func OpenOffline(dataDir string) (*Offline, error) {
	path := filepath.Join(dataDir, DBName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrInUse
	}
	if err != nil {
		return nil, fmt.Errorf("backup: open %s: %w", path, err)
	}
	return &Offline{db: db}, nil
}

// Snapshot is Snapshotter's.
func (o *Offline) Snapshot(fn func(int64, io.WriterTo) error) error {
	return o.db.View(func(tx *bolt.Tx) error { return fn(tx.Size(), tx) })
}

// Close releases the file.
func (o *Offline) Close() error { return o.db.Close() }

// Errors of Read and Restore.
var (
	ErrNotEmpty = errors.New("the data dir is not empty (use --force to restore over it)")
	ErrBad      = errors.New("not a valid Orchard backup")
)

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBad, fmt.Sprintf(format, a...))
}

// extract reads an archive, writing each file through create (nil: only
// check), and checks it against its manifest.
func extract(r io.Reader, create func(name string) (io.WriteCloser, error)) (*Manifest, error) {
	tr := tar.NewReader(r)
	got := map[string]File{}
	var m *Manifest
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("read archive: %v", err)
		}
		if m != nil {
			return nil, bad("%q after the manifest", h.Name)
		}
		if h.Typeflag != tar.TypeReg || !validName(h.Name) {
			return nil, bad("entry %q is not a plain file name", h.Name)
		}
		if _, dup := got[h.Name]; dup {
			return nil, bad("%q twice", h.Name)
		}
		if h.Name != DBName && h.Size > MaxKeyFile {
			return nil, bad("%q is %d bytes, over the %d a key file may have", h.Name, h.Size, MaxKeyFile)
		}
		if h.Name == ManifestName {
			js, err := io.ReadAll(io.LimitReader(tr, MaxKeyFile))
			if err != nil {
				return nil, bad("read manifest: %v", err)
			}
			m = new(Manifest)
			if err := json.Unmarshal(js, m); err != nil {
				return nil, bad("manifest: %v", err)
			}
			continue
		}
		var h256 hash.Hash = sha256.New()
		var dst io.Writer = h256
		var wc io.WriteCloser
		if create != nil {
			if wc, err = create(h.Name); err != nil {
				return nil, err
			}
			dst = io.MultiWriter(wc, h256)
		}
		n, err := io.Copy(dst, tr)
		if wc != nil {
			if cerr := wc.Close(); err == nil {
				err = cerr
			}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, bad("the archive is cut short in %q", h.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("backup: %s: %w", h.Name, err)
		}
		got[h.Name] = File{Name: h.Name, Size: n, SHA256: hex.EncodeToString(h256.Sum(nil))}
	}
	if m == nil {
		return nil, bad("no manifest: the archive is incomplete")
	}
	if m.Format != format {
		return nil, bad("format %d, this orchard reads %d", m.Format, format)
	}
	if len(m.Files) != len(got) {
		return nil, bad("the manifest lists %d files, the archive has %d", len(m.Files), len(got))
	}
	for _, f := range m.Files {
		if got[f.Name] != f {
			return nil, bad("%q does not match its manifest entry (cut or altered)", f.Name)
		}
	}
	if _, ok := got[DBName]; !ok {
		return nil, bad("no %s", DBName)
	}
	return m, nil
}

// Verify reads a whole archive and checks every file against the manifest.
func Verify(r io.Reader) (*Manifest, error) { return extract(r, nil) }

// Restore extracts an archive into dir. A dir with files in it is refused
// unless force, and a database a server holds always is. Everything is
// written and checked (manifest sums, and every page of the database) in a
// staging dir inside dir first; only then are the files moved in, so a bad
// archive changes nothing.
func Restore(r io.Reader, dir string, force bool) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if len(entries) > 0 && !force {
		return nil, ErrNotEmpty
	}
	if err := checkNotServing(filepath.Join(dir, DBName)); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(stage)
	m, err := extract(r, func(name string) (io.WriteCloser, error) {
		f, err := os.OpenFile(filepath.Join(stage, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		return syncCloser{f}, nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkDB(filepath.Join(stage, DBName)); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m.Files))
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("restore: sync %s: %w", dir, err)
		}
	}
	return m, nil
}

// syncCloser makes each restored file durable before it is moved in.
type syncCloser struct{ f *os.File }

func (s syncCloser) Write(p []byte) (int, error) { return s.f.Write(p) }
func (s syncCloser) Close() error {
	if err := s.f.Sync(); err != nil {
		s.f.Close()
		return err
	}
	return s.f.Close()
}

// checkNotServing refuses a database file another process has open.
func checkNotServing(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("restore: %s is in use: stop orchard serve first", path)
	}
	if err == nil {
		db.Close()
	}
	// A database that does not open is about to be replaced: that is the point.
	return nil
}

// checkDB opens the restored database and checks every page.
func checkDB(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return bad("the database does not open: %v", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		// Drain every error: Check's goroutine holds the transaction open
		// until it has sent them all.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = bad("the database fails its check: %v", err)
			}
		}
		return first
	})
}
