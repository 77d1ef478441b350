package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.EnrollStore = (*Store)(nil)

// PutCert stores a certificate record.
func (s *Store) PutCert(ctx context.Context, rec *storage.CertRecord) error {
	if rec == nil || rec.Hash == "" || rec.Serial == "" {
		return errors.New("postgres: put cert: hash and serial are required")
	}
	return s.write(ctx, func(tx pgx.Tx) error { return putCert(ctx, tx, rec) })
}

func putCert(ctx context.Context, q querier, rec *storage.CertRecord) error {
	return putDoc(ctx, q, rec, `INSERT INTO certs (hash, serial, doc) VALUES ($1, $2, $3)
		ON CONFLICT (hash) DO UPDATE SET serial = excluded.serial, doc = excluded.doc`, rec.Hash, rec.Serial)
}

// Cert returns a certificate record by hash.
func (s *Store) Cert(ctx context.Context, hash string) (*storage.CertRecord, error) {
	var rec storage.CertRecord
	if err := getDoc(ctx, s.pool, &rec, "SELECT doc FROM certs WHERE hash = $1", hash); err != nil {
		return nil, err
	}
	return &rec, nil
}

// RevokeCert marks the certificates with that hex serial revoked. Revoking
// twice keeps the first revocation time.
func (s *Store) RevokeCert(ctx context.Context, serial string, at time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		recs, err := listDocs[storage.CertRecord](ctx, tx, "SELECT doc FROM certs WHERE serial = $1 ORDER BY hash FOR UPDATE", serial)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("certificate serial %s: %w", serial, storage.ErrNotFound)
		}
		for i := range recs {
			if recs[i].Revoked {
				continue
			}
			recs[i].Revoked, recs[i].RevokedAt = true, at
			if err := putCert(ctx, tx, &recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListCerts returns records ordered by hash after the given one.
func (s *Store) ListCerts(ctx context.Context, after string, limit int) ([]storage.CertRecord, error) {
	return listDocs[storage.CertRecord](ctx, s.pool, "SELECT doc FROM certs WHERE hash > $1 ORDER BY hash LIMIT $2", after, limitArg(limit))
}

// PutChallenge stores a new challenge.
func (s *Store) PutChallenge(ctx context.Context, c *storage.Challenge) error {
	if c == nil || c.ID == "" || len(c.Hash) == 0 {
		return errors.New("postgres: put challenge: id and hash are required")
	}
	return s.write(ctx, func(tx pgx.Tx) error { return putNewChallenge(ctx, tx, c) })
}

func putNewChallenge(ctx context.Context, tx pgx.Tx, c *storage.Challenge) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, "INSERT INTO challenges (id, ref, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", c.ID, c.Ref, b)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("challenge %s: %w", c.ID, storage.ErrConflict)
	}
	return nil
}

func getChallenge(ctx context.Context, q querier, id string) (*storage.Challenge, error) {
	var c storage.Challenge
	if err := getDoc(ctx, q, &c, "SELECT doc FROM challenges WHERE id = $1 FOR UPDATE", id); err != nil {
		return nil, err
	}
	return &c, nil
}

func putChallenge(ctx context.Context, q querier, c *storage.Challenge) error {
	return putDoc(ctx, q, c, "UPDATE challenges SET doc = $2 WHERE id = $1", c.ID)
}

// Challenge returns a challenge by ID.
func (s *Store) Challenge(ctx context.Context, id string) (*storage.Challenge, error) {
	var c storage.Challenge
	if err := getDoc(ctx, s.pool, &c, "SELECT doc FROM challenges WHERE id = $1", id); err != nil {
		return nil, err
	}
	return &c, nil
}

// RedeemChallenge checks, counts and records in one transaction; the row
// lock and SERIALIZABLE make exactly one of concurrent redeemers of a
// single-use challenge win, on any replica.
func (s *Store) RedeemChallenge(ctx context.Context, id string, hash []byte, now time.Time, cert *storage.CertRecord) (*storage.Challenge, error) {
	if cert == nil || cert.Hash == "" || cert.Serial == "" {
		return nil, errors.New("postgres: redeem challenge: certificate record is required")
	}
	var before storage.Challenge
	err := s.write(ctx, func(tx pgx.Tx) error {
		c, err := getChallenge(ctx, tx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.ErrChallengeInvalid
		} else if err != nil {
			return err
		}
		if err := c.Check(hash, now); err != nil {
			return err
		}
		before = *c
		c.Uses++
		c.UsedAt = now
		if err := putChallenge(ctx, tx, c); err != nil {
			return err
		}
		return putCert(ctx, tx, cert)
	})
	if err != nil {
		return nil, err
	}
	return &before, nil
}

// RevokeChallenge marks a challenge revoked; the first revocation time stays.
func (s *Store) RevokeChallenge(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error { return revokeChallenge(ctx, tx, id, at) })
}

func revokeChallenge(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	c, err := getChallenge(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("challenge %s: %w", id, err)
	}
	if !c.RevokedAt.IsZero() {
		return nil
	}
	c.RevokedAt = at
	return putChallenge(ctx, tx, c)
}

// ChallengesFor lists a ref's challenges, oldest first.
func (s *Store) ChallengesFor(ctx context.Context, ref string) ([]storage.Challenge, error) {
	out, err := listDocs[storage.Challenge](ctx, s.pool, "SELECT doc FROM challenges WHERE ref = $1 ORDER BY id", ref)
	slices.SortStableFunc(out, func(a, b storage.Challenge) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

// storedInvitation keeps the token hash, which JSON leaves out of API answers.
type storedInvitation struct {
	*storage.Invitation
	TokenHash string `json:"token_hash"`
}

func decodeInvitations(ctx context.Context, q querier, sql string, args ...any) ([]storage.Invitation, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.Invitation
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		st := storedInvitation{Invitation: new(storage.Invitation)}
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("postgres: decode invitation: %w", err)
		}
		st.Invitation.TokenHash = st.TokenHash
		out = append(out, *st.Invitation)
	}
	return out, rows.Err()
}

// PutInvitation stores a new invitation.
func (s *Store) PutInvitation(ctx context.Context, inv *storage.Invitation) error {
	if inv == nil || inv.ID == "" || inv.TokenHash == "" {
		return errors.New("postgres: put invitation: id and token hash are required")
	}
	b, err := json.Marshal(storedInvitation{inv, inv.TokenHash})
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO invitations (id, token_hash, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", inv.ID, inv.TokenHash, b)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("invitation %s: %w", inv.ID, storage.ErrConflict)
		}
		return nil
	})
}

// InvitationByToken implements storage.InvitationStore.
func (s *Store) InvitationByToken(ctx context.Context, tokenHash string) (*storage.Invitation, error) {
	invs, err := decodeInvitations(ctx, s.pool, "SELECT doc FROM invitations WHERE token_hash = $1", tokenHash)
	if err != nil {
		return nil, err
	}
	if len(invs) == 0 {
		return nil, storage.ErrNotFound
	}
	return &invs[0], nil
}

// SpendInvitation spends a one-time link and stores its challenge.
func (s *Store) SpendInvitation(ctx context.Context, tokenHash string, now time.Time, ch *storage.Challenge) (*storage.Invitation, error) {
	if ch == nil {
		return nil, errors.New("postgres: spend invitation: challenge is required")
	}
	var out *storage.Invitation
	err := s.write(ctx, func(tx pgx.Tx) error {
		invs, err := decodeInvitations(ctx, tx, "SELECT doc FROM invitations WHERE token_hash = $1 FOR UPDATE", tokenHash)
		if err != nil {
			return err
		}
		if len(invs) == 0 {
			return storage.ErrNotFound
		}
		inv := &invs[0]
		if !inv.SpentAt.IsZero() || !now.Before(inv.ExpiresAt) {
			return storage.ErrGone
		}
		inv.SpentAt, inv.ChallengeID = now, ch.ID
		ch.Ref, ch.User = inv.ID, inv.User
		if err := putDoc(ctx, tx, storedInvitation{inv, inv.TokenHash}, "UPDATE invitations SET doc = $2 WHERE id = $1", inv.ID); err != nil {
			return err
		}
		out = inv
		return putNewChallenge(ctx, tx, ch)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListInvitations returns invitations ordered by ID.
func (s *Store) ListInvitations(ctx context.Context, after string, limit int) ([]storage.Invitation, error) {
	return decodeInvitations(ctx, s.pool, "SELECT doc FROM invitations WHERE id > $1 ORDER BY id LIMIT $2", after, limitArg(limit))
}

// PutConfiguratorProfile creates or replaces a profile.
func (s *Store) PutConfiguratorProfile(ctx context.Context, p *storage.ConfiguratorProfile) error {
	if p == nil || p.ID == "" {
		return errors.New("postgres: put configurator profile: id is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		return putDoc(ctx, tx, p, "INSERT INTO configurator_profiles (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc", p.ID)
	})
}

// ConfiguratorProfile returns a profile by ID.
func (s *Store) ConfiguratorProfile(ctx context.Context, id string) (*storage.ConfiguratorProfile, error) {
	var p storage.ConfiguratorProfile
	if err := getDoc(ctx, s.pool, &p, "SELECT doc FROM configurator_profiles WHERE id = $1", id); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListConfiguratorProfiles returns every profile ordered by ID.
func (s *Store) ListConfiguratorProfiles(ctx context.Context) ([]storage.ConfiguratorProfile, error) {
	return listDocs[storage.ConfiguratorProfile](ctx, s.pool, "SELECT doc FROM configurator_profiles ORDER BY id")
}

// DeleteConfiguratorProfile removes a profile without serials and revokes its challenges.
func (s *Store) DeleteConfiguratorProfile(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM configurator_profiles WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("configurator profile %s: %w", id, storage.ErrNotFound)
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM configurator_serials WHERE profile_id = $1", id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			// Returning an error rolls the delete back.
			return fmt.Errorf("%d serial numbers are assigned to the profile; reassign them first: %w", n, storage.ErrConflict)
		}
		rows, err := tx.Query(ctx, "SELECT id FROM challenges WHERE ref = $1 ORDER BY id", id)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, cid := range ids {
			if err := revokeChallenge(ctx, tx, cid, at); err != nil {
				return err
			}
		}
		return nil
	})
}

func getSerial(ctx context.Context, q querier, serial string) (*storage.SerialAssignment, error) {
	var a storage.SerialAssignment
	if err := getDoc(ctx, q, &a, "SELECT doc FROM configurator_serials WHERE serial = $1", serial); err != nil {
		return nil, err
	}
	return &a, nil
}

// putSerial writes an assignment after checking its profile exists.
func putSerial(ctx context.Context, tx pgx.Tx, a *storage.SerialAssignment) error {
	var one int
	// FOR SHARE: a concurrent delete of the profile waits for this write.
	if err := tx.QueryRow(ctx, "SELECT 1 FROM configurator_profiles WHERE id = $1 FOR SHARE", a.ProfileID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("configurator profile %q: %w", a.ProfileID, storage.ErrNotFound)
	} else if err != nil {
		return err
	}
	return putDoc(ctx, tx, a, `INSERT INTO configurator_serials (serial, profile_id, doc) VALUES ($1, $2, $3)
		ON CONFLICT (serial) DO UPDATE SET profile_id = excluded.profile_id, doc = excluded.doc`, a.Serial, a.ProfileID)
}

// ImportSerials writes every row or none.
func (s *Store) ImportSerials(ctx context.Context, rows []storage.SerialAssignment, overwrite bool) (storage.ImportResult, error) {
	var res storage.ImportResult
	err := s.write(ctx, func(tx pgx.Tx) error {
		res = storage.ImportResult{}
		for i := range rows {
			row := rows[i]
			if row.Serial == "" {
				return errors.New("postgres: import serials: empty serial")
			}
			old, err := getSerial(ctx, tx, row.Serial)
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
			if err := putSerial(ctx, tx, &row); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// AssignSerials moves serials to a profile.
func (s *Store) AssignSerials(ctx context.Context, serials []string, profileID string, at time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		for _, serial := range serials {
			a, err := getSerial(ctx, tx, serial)
			if err != nil {
				return fmt.Errorf("serial %q: %w", serial, err)
			}
			a.ProfileID, a.UpdatedAt = profileID, at
			if err := putSerial(ctx, tx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// Serial returns one assignment.
func (s *Store) Serial(ctx context.Context, serial string) (*storage.SerialAssignment, error) {
	return getSerial(ctx, s.pool, serial)
}

// ListSerials returns assignments ordered by serial.
func (s *Store) ListSerials(ctx context.Context, profileID, after string, limit int) ([]storage.SerialAssignment, error) {
	return listDocs[storage.SerialAssignment](ctx, s.pool, `SELECT doc FROM configurator_serials
		WHERE serial > $1 AND ($2 = '' OR profile_id = $2) ORDER BY serial LIMIT $3`, after, profileID, limitArg(limit))
}
