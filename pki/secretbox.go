package pki

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SecretBox encrypts secrets at rest (bootstrap tokens, unlock tokens, push
// and ABM keys) with AES-256-GCM under a key kept in the data dir, so a
// copied database file alone does not reveal them.
type SecretBox struct{ aead cipher.AEAD }

// LoadOrCreateSecretBox loads <dir>/secret.key, creating it on first use.
func LoadOrCreateSecretBox(dir string) (*SecretBox, error) {
	path := filepath.Join(dir, "secret.key")
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := WriteFileAtomic(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("pki: write secret key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("pki: read secret key: %w", err)
	}
	return NewSecretBox(key)
}

// NewSecretBox uses a 32-byte key.
func NewSecretBox(key []byte) (*SecretBox, error) {
	if len(key) != 32 {
		return nil, errors.New("pki: secret key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &SecretBox{aead: aead}, nil
}

// Seal encrypts plaintext; label binds the ciphertext to its purpose so a
// sealed value cannot be swapped into another field.
func (b *SecretBox) Seal(plaintext []byte, label string) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return b.aead.Seal(nonce, nonce, plaintext, []byte(label))
}

// Open decrypts what Seal produced under the same label.
func (b *SecretBox) Open(sealed []byte, label string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("pki: sealed value too short")
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(label))
	if err != nil {
		return nil, errors.New("pki: sealed value does not open (wrong key or tampered)")
	}
	return out, nil
}
