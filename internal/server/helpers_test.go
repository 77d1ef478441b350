package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"sync"
	"testing"
)

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	keyOnce sync.Once
	keys    []*rsa.PrivateKey
	keyN    int
	keyMu   sync.Mutex
)

// mustKey hands out one of a few RSA keys: a device key only has to be
// real, not unique per test.
func mustKey(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k)
		}
	})
	keyMu.Lock()
	defer keyMu.Unlock()
	keyN++
	return keys[keyN%len(keys)]
}
