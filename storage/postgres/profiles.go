package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.ProfileStore = (*Store)(nil)

// PutProfile implements storage.ProfileStore.
func (s *Store) PutProfile(ctx context.Context, p *storage.Profile, v *storage.ProfileVersion) error {
	if p == nil || p.ID == "" {
		return errors.New("postgres: put profile: ID is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		var old storage.Profile
		err := getDoc(ctx, tx, &old, "SELECT doc FROM profiles WHERE id = $1 FOR UPDATE", p.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		exists := err == nil
		if v != nil {
			if v.ProfileID != p.ID || v.Version != p.Version || v.Version != old.Version+1 {
				return fmt.Errorf("postgres: profile %s version %d after %d: %w", p.ID, v.Version, old.Version, storage.ErrConflict)
			}
			if err := putDoc(ctx, tx, v, "INSERT INTO profile_versions (profile_id, version, doc) VALUES ($1, $2, $3)", p.ID, v.Version); err != nil {
				return err
			}
		} else if !exists || p.Version != old.Version {
			return fmt.Errorf("postgres: profile %s: a new profile or version needs its version record: %w", p.ID, storage.ErrConflict)
		}
		return putDoc(ctx, tx, p, "INSERT INTO profiles (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc", p.ID)
	})
}

// GetProfile implements storage.ProfileStore.
func (s *Store) GetProfile(ctx context.Context, id string) (*storage.Profile, error) {
	var p storage.Profile
	if err := getDoc(ctx, s.pool, &p, "SELECT doc FROM profiles WHERE id = $1", id); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetProfileVersion implements storage.ProfileStore.
func (s *Store) GetProfileVersion(ctx context.Context, id string, version int) (*storage.ProfileVersion, error) {
	var v storage.ProfileVersion
	if err := getDoc(ctx, s.pool, &v, "SELECT doc FROM profile_versions WHERE profile_id = $1 AND version = $2", id, version); err != nil {
		return nil, err
	}
	return &v, nil
}

// ListProfiles implements storage.ProfileStore.
func (s *Store) ListProfiles(ctx context.Context, after string, limit int) ([]storage.Profile, error) {
	return listDocs[storage.Profile](ctx, s.pool, "SELECT doc FROM profiles WHERE id > $1 ORDER BY id LIMIT $2", after, limitArg(limit))
}

// ChannelProfiles implements storage.ProfileStore.
func (s *Store) ChannelProfiles(ctx context.Context, channelID string) ([]storage.ChannelProfile, error) {
	out, err := listDocs[storage.ChannelProfile](ctx, s.pool, "SELECT doc FROM profile_states WHERE channel = $1 ORDER BY profile_id", channelID)
	if out == nil && err == nil {
		out = []storage.ChannelProfile{}
	}
	return out, err
}

// PutChannelProfiles implements storage.ProfileStore.
func (s *Store) PutChannelProfiles(ctx context.Context, states []storage.ChannelProfile) error {
	for _, st := range states {
		if st.ProfileID == "" || st.ChannelID == "" {
			return errors.New("postgres: put channel profiles: profile and channel are required")
		}
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		for i := range states {
			if err := putDoc(ctx, tx, &states[i], `INSERT INTO profile_states (profile_id, channel, doc) VALUES ($1, $2, $3)
				ON CONFLICT (profile_id, channel) DO UPDATE SET doc = excluded.doc`, states[i].ProfileID, states[i].ChannelID); err != nil {
				return err
			}
		}
		return nil
	})
}

// ProfileStates implements storage.ProfileStore.
func (s *Store) ProfileStates(ctx context.Context, profileID, after string, limit int) ([]storage.ChannelProfile, error) {
	return listDocs[storage.ChannelProfile](ctx, s.pool,
		"SELECT doc FROM profile_states WHERE profile_id = $1 AND channel > $2 ORDER BY channel LIMIT $3", profileID, after, limitArg(limit))
}
