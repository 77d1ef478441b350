package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReloadAPIKey reads the data dir's api-key file again and makes it the
// only key the admin API takes, without a restart (serve calls it on
// SIGHUP). A missing or too short file leaves the current key in place.
func (s *Server) ReloadAPIKey() error {
	path := filepath.Join(s.cfg.DataDir, "api-key")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reload API key: %w", err)
	}
	key := strings.TrimSpace(string(data))
	if len(key) < 16 {
		return fmt.Errorf("reload API key: %s: key too short (16 characters at least); the old key stays", path)
	}
	s.keyMu.Lock()
	changed := key != s.apiKey
	s.apiKey = key
	s.keyMu.Unlock()
	s.admin.SetAPIKey(key)
	if changed {
		s.log.Info("admin API key replaced", "file", path)
	}
	return nil
}
