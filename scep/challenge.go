package scep

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// ChallengeSpec says what a new challenge is for and how long it lives.
type ChallengeSpec struct {
	Kind      string // storage.KindInvitation, KindConfigurator, ...
	Ref       string
	ForUDID   string
	ForSerial string
	RenewalOf string // KindReenroll: the certificate hash being renewed
	MultiUse  bool
	// User is the directory user the profile is for ("" none).
	User string
	// ForCategory is the device category the signed-in user chose.
	ForCategory string
	// ForSession is the portal's enrollment session ID.
	ForSession string
	// AppleVerified: ForUDID and ForSerial come from a MachineInfo verified
	// against Apple's root (the certificate may then take over an enrollment).
	AppleVerified bool
	TTL           time.Duration
}

// NewChallenge returns a fresh challenge secret and the record to store
// for it. The secret is "<id>.<160 random bits>"; only its SHA-256 is kept.
func NewChallenge(spec ChallengeSpec, now time.Time) (secret string, rec *storage.Challenge, err error) {
	if spec.Kind == "" || spec.TTL <= 0 {
		return "", nil, errors.New("scep: challenge needs a kind and a positive TTL")
	}
	id := make([]byte, 10)
	key := make([]byte, 20)
	if _, err := rand.Read(id); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(key); err != nil {
		return "", nil, err
	}
	secret = hex.EncodeToString(id) + "." + base64.RawURLEncoding.EncodeToString(key)
	return secret, &storage.Challenge{
		ID: hex.EncodeToString(id), Hash: ChallengeHash(secret),
		Kind: spec.Kind, Ref: spec.Ref, ForUDID: spec.ForUDID, ForSerial: spec.ForSerial, RenewalOf: spec.RenewalOf, User: spec.User,
		ForCategory: spec.ForCategory, ForSession: spec.ForSession,
		MultiUse: spec.MultiUse, AppleVerified: spec.AppleVerified, CreatedAt: now, ExpiresAt: now.Add(spec.TTL),
	}, nil
}

// ChallengeHash is what a challenge store keeps of a secret.
func ChallengeHash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// challengeID returns the public ID part of a challenge secret.
func challengeID(secret string) (string, bool) {
	id, _, ok := strings.Cut(secret, ".")
	if !ok || len(id) != 20 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}
