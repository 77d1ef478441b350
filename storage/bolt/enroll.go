package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketChallenges     = []byte("challenges")        // id -> Challenge JSON
	bucketChallengeRefs  = []byte("challenge_refs")    // ref \x00 id -> ""
	bucketInvitations    = []byte("invitations")       // id -> Invitation JSON
	bucketInviteTokens   = []byte("invitation_tokens") // token hash -> id
	bucketCfgProfiles    = []byte("configurator_profiles")
	bucketCfgSerials     = []byte("configurator_serials")         // serial -> SerialAssignment JSON
	bucketCfgProfSerials = []byte("configurator_profile_serials") // profile \x00 serial -> ""
)

func init() {
	for _, b := range [][]byte{bucketChallenges, bucketChallengeRefs, bucketInvitations, bucketInviteTokens,
		bucketCfgProfiles, bucketCfgSerials, bucketCfgProfSerials} {
		registerBuckets(string(b))
	}
}

var _ storage.EnrollStore = (*Store)(nil)

func pairKey(a, b string) []byte { return []byte(a + "\x00" + b) }

// PutChallenge stores a new challenge.
func (s *Store) PutChallenge(ctx context.Context, c *storage.Challenge) error {
	if c == nil || c.ID == "" || len(c.Hash) == 0 {
		return errors.New("bolt: put challenge: id and hash are required")
	}
	return s.update(func(tx *bolt.Tx) error { return putNewChallenge(tx, c) })
}

func putNewChallenge(tx *bolt.Tx, c *storage.Challenge) error {
	b := tx.Bucket(bucketChallenges)
	if b.Get([]byte(c.ID)) != nil {
		return fmt.Errorf("challenge %s: %w", c.ID, storage.ErrConflict)
	}
	if err := putJSON(b, []byte(c.ID), c); err != nil {
		return err
	}
	return tx.Bucket(bucketChallengeRefs).Put(pairKey(c.Ref, c.ID), nil)
}

// Challenge returns a challenge by ID.
func (s *Store) Challenge(ctx context.Context, id string) (*storage.Challenge, error) {
	var c storage.Challenge
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketChallenges), []byte(id), &c) }); err != nil {
		return nil, err
	}
	return &c, nil
}

// RedeemChallenge checks, counts and records in one transaction.
func (s *Store) RedeemChallenge(ctx context.Context, id string, hash []byte, now time.Time, cert *storage.CertRecord) (*storage.Challenge, error) {
	if cert == nil || cert.Hash == "" || cert.Serial == "" {
		return nil, errors.New("bolt: redeem challenge: certificate record is required")
	}
	var before storage.Challenge
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChallenges)
		var c storage.Challenge
		if err := getJSON(b, []byte(id), &c); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return storage.ErrChallengeInvalid
			}
			return err
		}
		if err := c.Check(hash, now); err != nil {
			return err
		}
		before = c
		c.Uses++
		c.UsedAt = now
		if err := putJSON(b, []byte(id), &c); err != nil {
			return err
		}
		return putCert(tx, cert)
	})
	if err != nil {
		return nil, err
	}
	return &before, nil
}

// RevokeChallenge marks a challenge revoked; the first revocation time stays.
func (s *Store) RevokeChallenge(ctx context.Context, id string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error { return revokeChallenge(tx, id, at) })
}

func revokeChallenge(tx *bolt.Tx, id string, at time.Time) error {
	b := tx.Bucket(bucketChallenges)
	var c storage.Challenge
	if err := getJSON(b, []byte(id), &c); err != nil {
		return fmt.Errorf("challenge %s: %w", id, err)
	}
	if !c.RevokedAt.IsZero() {
		return nil
	}
	c.RevokedAt = at
	return putJSON(b, []byte(id), &c)
}

// ChallengesFor lists a ref's challenges.
func (s *Store) ChallengesFor(ctx context.Context, ref string) ([]storage.Challenge, error) {
	var out []storage.Challenge
	err := s.view(func(tx *bolt.Tx) error {
		ids := refIDs(tx.Bucket(bucketChallengeRefs), ref)
		for _, id := range ids {
			var c storage.Challenge
			if err := getJSON(tx.Bucket(bucketChallenges), []byte(id), &c); err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	sortChallenges(out)
	return out, err
}

// refIDs returns the second halves of pair keys starting with ref.
func refIDs(b *bolt.Bucket, ref string) []string {
	prefix := pairKey(ref, "")
	var ids []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

func sortChallenges(cs []storage.Challenge) {
	slices.SortStableFunc(cs, func(a, b storage.Challenge) int { return a.CreatedAt.Compare(b.CreatedAt) })
}

// PutInvitation stores a new invitation and its token index.
func (s *Store) PutInvitation(ctx context.Context, inv *storage.Invitation) error {
	if inv == nil || inv.ID == "" || inv.TokenHash == "" {
		return errors.New("bolt: put invitation: id and token hash are required")
	}
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketInvitations).Get([]byte(inv.ID)) != nil || tx.Bucket(bucketInviteTokens).Get([]byte(inv.TokenHash)) != nil {
			return fmt.Errorf("invitation %s: %w", inv.ID, storage.ErrConflict)
		}
		if err := putInvitation(tx, inv); err != nil {
			return err
		}
		return tx.Bucket(bucketInviteTokens).Put([]byte(inv.TokenHash), []byte(inv.ID))
	})
}

// putInvitation keeps the token hash, which JSON leaves out of API answers.
func putInvitation(tx *bolt.Tx, inv *storage.Invitation) error {
	return putJSON(tx.Bucket(bucketInvitations), []byte(inv.ID), storedInvitation{inv, inv.TokenHash})
}

type storedInvitation struct {
	*storage.Invitation
	TokenHash string `json:"token_hash"`
}

func getInvitation(tx *bolt.Tx, id []byte) (*storage.Invitation, error) {
	data := tx.Bucket(bucketInvitations).Get(id)
	if data == nil {
		return nil, storage.ErrNotFound
	}
	return decodeInvitation(data)
}

func decodeInvitation(data []byte) (*storage.Invitation, error) {
	st := storedInvitation{Invitation: new(storage.Invitation)}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("bolt: decode invitation: %w", err)
	}
	st.Invitation.TokenHash = st.TokenHash
	return st.Invitation, nil
}

// SpendInvitation spends a one-time link and stores its challenge.
func (s *Store) SpendInvitation(ctx context.Context, tokenHash string, now time.Time, ch *storage.Challenge) (*storage.Invitation, error) {
	if ch == nil {
		return nil, errors.New("bolt: spend invitation: challenge is required")
	}
	var out *storage.Invitation
	err := s.update(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketInviteTokens).Get([]byte(tokenHash))
		if id == nil {
			return storage.ErrNotFound
		}
		inv, err := getInvitation(tx, id)
		if err != nil {
			return err
		}
		if !inv.SpentAt.IsZero() || !now.Before(inv.ExpiresAt) {
			return storage.ErrGone
		}
		inv.SpentAt, inv.ChallengeID = now, ch.ID
		ch.Ref, ch.User = inv.ID, inv.User
		if err := putInvitation(tx, inv); err != nil {
			return err
		}
		out = inv
		return putNewChallenge(tx, ch)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InvitationByToken implements storage.InvitationStore.
func (s *Store) InvitationByToken(ctx context.Context, tokenHash string) (*storage.Invitation, error) {
	var out *storage.Invitation
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketInviteTokens).Get([]byte(tokenHash))
		if id == nil {
			return storage.ErrNotFound
		}
		var err error
		out, err = getInvitation(tx, id)
		return err
	})
	return out, err
}

// ListInvitations returns invitations ordered by ID.
func (s *Store) ListInvitations(ctx context.Context, after string, limit int) ([]storage.Invitation, error) {
	var out []storage.Invitation
	err := s.view(func(tx *bolt.Tx) error {
		return scanValues(tx.Bucket(bucketInvitations), nil, after, limit, func(v []byte) error {
			inv, err := decodeInvitation(v)
			if err != nil {
				return err
			}
			out = append(out, *inv)
			return nil
		})
	})
	return out, err
}

// PutConfiguratorProfile creates or replaces a profile.
func (s *Store) PutConfiguratorProfile(ctx context.Context, p *storage.ConfiguratorProfile) error {
	if p == nil || p.ID == "" {
		return errors.New("bolt: put configurator profile: id is required")
	}
	return s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketCfgProfiles), []byte(p.ID), p) })
}

// ConfiguratorProfile returns a profile by ID.
func (s *Store) ConfiguratorProfile(ctx context.Context, id string) (*storage.ConfiguratorProfile, error) {
	var p storage.ConfiguratorProfile
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketCfgProfiles), []byte(id), &p) }); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListConfiguratorProfiles returns every profile ordered by ID.
func (s *Store) ListConfiguratorProfiles(ctx context.Context) ([]storage.ConfiguratorProfile, error) {
	return listJSON[storage.ConfiguratorProfile](s, bucketCfgProfiles, "", 0)
}

// DeleteConfiguratorProfile removes a profile without serials and revokes its challenges.
func (s *Store) DeleteConfiguratorProfile(ctx context.Context, id string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCfgProfiles).Get([]byte(id)) == nil {
			return fmt.Errorf("configurator profile %s: %w", id, storage.ErrNotFound)
		}
		if n := len(refIDs(tx.Bucket(bucketCfgProfSerials), id)); n > 0 {
			return fmt.Errorf("%d serial numbers are assigned to the profile; reassign them first: %w", n, storage.ErrConflict)
		}
		for _, cid := range refIDs(tx.Bucket(bucketChallengeRefs), id) {
			if err := revokeChallenge(tx, cid, at); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketCfgProfiles).Delete([]byte(id))
	})
}

// ImportSerials writes every row or none.
func (s *Store) ImportSerials(ctx context.Context, rows []storage.SerialAssignment, overwrite bool) (storage.ImportResult, error) {
	var res storage.ImportResult
	err := s.update(func(tx *bolt.Tx) error {
		res = storage.ImportResult{}
		for i := range rows {
			row := rows[i]
			if row.Serial == "" {
				return errors.New("bolt: import serials: empty serial")
			}
			var old storage.SerialAssignment
			err := getJSON(tx.Bucket(bucketCfgSerials), []byte(row.Serial), &old)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				res.Added++
			case err != nil:
				return err
			default:
				res.Updated++
				row.AddedAt = old.AddedAt
				if !overwrite {
					row.Details = old.Details
				}
			}
			if err := assignSerial(tx, &old, &row); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// assignSerial writes next, moving the profile index from old when it had one.
func assignSerial(tx *bolt.Tx, old, next *storage.SerialAssignment) error {
	if tx.Bucket(bucketCfgProfiles).Get([]byte(next.ProfileID)) == nil {
		return fmt.Errorf("configurator profile %q: %w", next.ProfileID, storage.ErrNotFound)
	}
	idx := tx.Bucket(bucketCfgProfSerials)
	if old.ProfileID != "" {
		if err := idx.Delete(pairKey(old.ProfileID, old.Serial)); err != nil {
			return err
		}
	}
	if err := putJSON(tx.Bucket(bucketCfgSerials), []byte(next.Serial), next); err != nil {
		return err
	}
	return idx.Put(pairKey(next.ProfileID, next.Serial), nil)
}

// AssignSerials moves serials to a profile.
func (s *Store) AssignSerials(ctx context.Context, serials []string, profileID string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		for _, serial := range serials {
			var old storage.SerialAssignment
			if err := getJSON(tx.Bucket(bucketCfgSerials), []byte(serial), &old); err != nil {
				return fmt.Errorf("serial %q: %w", serial, err)
			}
			next := old
			next.ProfileID, next.UpdatedAt = profileID, at
			if err := assignSerial(tx, &old, &next); err != nil {
				return err
			}
		}
		return nil
	})
}

// Serial returns one assignment.
func (s *Store) Serial(ctx context.Context, serial string) (*storage.SerialAssignment, error) {
	var a storage.SerialAssignment
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketCfgSerials), []byte(serial), &a) }); err != nil {
		return nil, err
	}
	return &a, nil
}

// ListSerials returns assignments ordered by serial.
func (s *Store) ListSerials(ctx context.Context, profileID, after string, limit int) ([]storage.SerialAssignment, error) {
	var out []storage.SerialAssignment
	err := s.view(func(tx *bolt.Tx) error {
		decode := func(v []byte) error {
			var a storage.SerialAssignment
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		}
		if profileID == "" {
			return scanValues(tx.Bucket(bucketCfgSerials), nil, after, limit, decode)
		}
		serials := tx.Bucket(bucketCfgSerials)
		for _, serial := range refIDs(tx.Bucket(bucketCfgProfSerials), profileID) {
			if serial <= after && after != "" {
				continue
			}
			if limit > 0 && len(out) >= limit {
				break
			}
			if err := decode(serials.Get([]byte(serial))); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
