package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bProfiles        = []byte("profiles")         // id -> Profile
	bProfileVersions = []byte("profile_versions") // id \x00 version (decimal, 10 wide) -> ProfileVersion
	bProfileStates   = []byte("profile_states")   // profile \x00 channel -> ChannelProfile
	bChannelProfiles = []byte("channel_profiles") // channel \x00 profile -> nothing: the per-channel index
)

func init() {
	registerBuckets(string(bProfiles), string(bProfileVersions), string(bProfileStates), string(bChannelProfiles))
}

var _ storage.ProfileStore = (*Store)(nil)

func versionKey(id string, v int) []byte { return key(id, fmt.Sprintf("%010d", v)) }

// PutProfile implements storage.ProfileStore.
func (s *Store) PutProfile(ctx context.Context, p *storage.Profile, v *storage.ProfileVersion) error {
	if p == nil || p.ID == "" {
		return errors.New("bolt: put profile: ID is required")
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bProfiles)
		var old storage.Profile
		err := getJSON(b, []byte(p.ID), &old)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		exists := err == nil
		if v != nil {
			if v.ProfileID != p.ID || v.Version != p.Version || v.Version != old.Version+1 {
				return fmt.Errorf("bolt: profile %s version %d after %d: %w", p.ID, v.Version, old.Version, storage.ErrConflict)
			}
			if err := putJSON(tx.Bucket(bProfileVersions), versionKey(p.ID, v.Version), v); err != nil {
				return err
			}
		} else if !exists || p.Version != old.Version {
			return fmt.Errorf("bolt: profile %s: a new profile or version needs its version record: %w", p.ID, storage.ErrConflict)
		}
		return putJSON(b, []byte(p.ID), p)
	})
}

// GetProfile implements storage.ProfileStore.
func (s *Store) GetProfile(ctx context.Context, id string) (*storage.Profile, error) {
	var p storage.Profile
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bProfiles), []byte(id), &p) }); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetProfileVersion implements storage.ProfileStore.
func (s *Store) GetProfileVersion(ctx context.Context, id string, version int) (*storage.ProfileVersion, error) {
	var v storage.ProfileVersion
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bProfileVersions), versionKey(id, version), &v) })
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// ListProfiles implements storage.ProfileStore.
func (s *Store) ListProfiles(ctx context.Context, after string, limit int) ([]storage.Profile, error) {
	return listJSON[storage.Profile](s, bProfiles, after, limit)
}

// ChannelProfiles implements storage.ProfileStore.
func (s *Store) ChannelProfiles(ctx context.Context, channelID string) ([]storage.ChannelProfile, error) {
	out := []storage.ChannelProfile{}
	err := s.view(func(tx *bolt.Tx) error {
		states := tx.Bucket(bProfileStates)
		p := prefix(channelID)
		c := tx.Bucket(bChannelProfiles).Cursor()
		for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
			var st storage.ChannelProfile
			if err := getJSON(states, key(string(k[len(p):]), channelID), &st); err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// PutChannelProfiles implements storage.ProfileStore.
func (s *Store) PutChannelProfiles(ctx context.Context, states []storage.ChannelProfile) error {
	for _, st := range states {
		if st.ProfileID == "" || st.ChannelID == "" {
			return errors.New("bolt: put channel profiles: profile and channel are required")
		}
	}
	return s.update(func(tx *bolt.Tx) error {
		b, ix := tx.Bucket(bProfileStates), tx.Bucket(bChannelProfiles)
		for i := range states {
			if err := putJSON(b, key(states[i].ProfileID, states[i].ChannelID), &states[i]); err != nil {
				return err
			}
			if err := ix.Put(key(states[i].ChannelID, states[i].ProfileID), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// ProfileStates implements storage.ProfileStore.
func (s *Store) ProfileStates(ctx context.Context, profileID, after string, limit int) ([]storage.ChannelProfile, error) {
	var out []storage.ChannelProfile
	err := s.view(func(tx *bolt.Tx) error {
		return scanValues(tx.Bucket(bProfileStates), prefix(profileID), after, limit, func(v []byte) error {
			var st storage.ChannelProfile
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
			out = append(out, st)
			return nil
		})
	})
	return out, err
}
