package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/backup"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

func openStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(dir, backup.DBName), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func putToken(t *testing.T, s *bolt.Store, id string) {
	t.Helper()
	if err := s.PutDEPToken(context.Background(), storage.DEPToken{ID: id, Name: id, SealedCredentials: []byte("x"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// A backup taken while writers commit holds a consistent database (every
// token committed before the snapshot, none half-written) and the key
// files; restored into an empty dir it opens with the same records.
func TestBackupWhileWritingThenRestore(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "secret.key"), []byte("sekrit"), 0o600)
	os.WriteFile(filepath.Join(src, "ca.pem"), []byte("cert"), 0o644)
	os.WriteFile(filepath.Join(src, "big.bin"), make([]byte, backup.MaxKeyFile+1), 0o600)
	s := openStore(t, src)
	for i := range 50 {
		putToken(t, s, fmt.Sprintf("before-%03d", i))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.PutDEPToken(ctx, storage.DEPToken{ID: fmt.Sprintf("during-%05d", i), SealedCredentials: []byte("x")}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var archive bytes.Buffer
	m, err := backup.Write(&archive, src, s, "test")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(m.Skipped) != 1 || m.Skipped[0] != "big.bin" {
		t.Errorf("skipped = %v, want the oversized file", m.Skipped)
	}
	if _, err := backup.Verify(bytes.NewReader(archive.Bytes())); err != nil {
		t.Fatalf("verify: %v", err)
	}

	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(bytes.NewReader(archive.Bytes()), dst, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "secret.key")); string(b) != "sekrit" {
		t.Errorf("secret.key = %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "ca.pem")); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored files should be 0600: %v", fi)
	}
	if left, _ := filepath.Glob(filepath.Join(dst, ".restore-*")); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
	r := openStore(t, dst)
	defer r.Close()
	tokens, err := r.DEPTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for _, tk := range tokens {
		if strings.HasPrefix(tk.ID, "before-") {
			before++
		}
	}
	if before != 50 {
		t.Errorf("restored %d of the 50 tokens committed before the backup", before)
	}
}

// tarOf builds an archive by hand.
func tarOf(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		tw.WriteHeader(&tar.Header{Name: e[0], Size: int64(len(e[1])), Mode: 0o600, Typeflag: tar.TypeReg})
		tw.Write([]byte(e[1]))
	}
	tw.Close()
	return b.Bytes()
}

// Hostile or broken archives are refused with a reason, and the target
// dir is left as it was: no file of the archive lands in it.
func TestRestoreRefuses(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "secret.key"), []byte("sekrit"), 0o600)
	s := openStore(t, src)
	putToken(t, s, "one")
	var good bytes.Buffer
	if _, err := backup.Write(&good, src, s, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()
	g := good.Bytes()
	altered := bytes.Replace(g, []byte("sekrit"), []byte("SEKRIT"), 1)
	for name, tc := range map[string]struct {
		archive []byte
		want    string
	}{
		"truncated":       {g[:len(g)/2], "not a valid"},
		"altered":         {altered, "does not match"},
		"garbage":         {[]byte("hello, not a tar at all, but long enough to be read as a header block..."), "not a valid"},
		"path traversal":  {tarOf(t, [2]string{"../evil", "x"}), "not a plain file name"},
		"subdirectory":    {tarOf(t, [2]string{"a/b", "x"}), "not a plain file name"},
		"no manifest":     {tarOf(t, [2]string{"orchard.db", "x"}), "no manifest"},
		"duplicate":       {tarOf(t, [2]string{"a", "x"}, [2]string{"a", "y"}), "twice"},
		"after manifest":  {tarOf(t, [2]string{"orchard-backup.json", `{"format":1}`}, [2]string{"a", "x"}), "after the manifest"},
		"bad db":          {tarOf(t, [2]string{"orchard.db", "x"}, [2]string{"orchard-backup.json", `{"format":1,"files":[{"name":"orchard.db","size":1,"sha256":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}]}`}), "database does not open"},
		"unknown format":  {tarOf(t, [2]string{"orchard-backup.json", `{"format":9}`}), "format 9"},
		"listed, missing": {tarOf(t, [2]string{"orchard-backup.json", `{"format":1,"files":[{"name":"orchard.db","size":1,"sha256":"00"}]}`}), "lists 1 files"},
	} {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			_, err := backup.Restore(bytes.NewReader(tc.archive), dst, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if left, _ := os.ReadDir(dst); len(left) != 0 {
				t.Errorf("refused restore left %v in the dir", left)
			}
		})
	}

	// A non-empty dir needs force; a dir a server holds is refused even then.
	dst := t.TempDir()
	os.WriteFile(filepath.Join(dst, "notes.txt"), []byte("mine"), 0o600)
	if _, err := backup.Restore(bytes.NewReader(g), dst, false); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("non-empty dir: %v", err)
	}
	held := openStore(t, dst)
	if _, err := backup.Restore(bytes.NewReader(g), dst, true); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("restore over a running server's database: %v", err)
	}
	held.Close()
	if _, err := backup.Restore(bytes.NewReader(g), dst, true); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "notes.txt")); string(b) != "mine" {
		t.Error("a forced restore removed a file the archive does not hold")
	}
}

// An offline backup reads a stopped server's database; with the server
// running it is refused, pointing at the online way.
func TestOfflineBackup(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	putToken(t, s, "one")
	if _, err := backup.OpenOffline(dir); !errors.Is(err, backup.ErrInUse) {
		t.Fatalf("offline open of a held database: %v", err)
	}
	s.Close()
	o, err := backup.OpenOffline(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var b bytes.Buffer
	if _, err := backup.Write(&b, dir, o, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Verify(&b); err != nil {
		t.Fatal(err)
	}
}
