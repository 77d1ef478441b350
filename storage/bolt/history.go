package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// bHistory indexes every target by channel and queue position: channel NUL
// big-endian seq -> uuid. Enqueue writes it with the target; unlike the
// queue it is never emptied, so it is the channel's command history.
const bHistory = "channel_history"

func init() {
	registerIndex(bHistory, buildHistory)
}

// buildHistory fills the index from the targets of a database written
// before it existed.
func buildHistory(tx *bolt.Tx) ([]string, error) {
	h := tx.Bucket([]byte(bHistory))
	err := tx.Bucket([]byte(bTargets)).ForEach(func(k, v []byte) error {
		uuid, ch, ok := bytes.Cut(k, []byte{sep})
		if !ok {
			return nil
		}
		var t storage.Target
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode target %q: %w", k, err)
		}
		return h.Put(seqKey(string(ch), t.Seq), bytes.Clone(uuid))
	})
	return nil, err
}

// ChannelCommands implements storage.CommandHistory.
func (s *Store) ChannelCommands(ctx context.Context, channel string, before uint64, limit int) ([]storage.ChannelCommand, error) {
	if limit <= 0 {
		limit = 100
	}
	if before == 0 {
		before = math.MaxUint64
	}
	var out []storage.ChannelCommand
	err := s.view(func(tx *bolt.Tx) error {
		cb, tb, rb := tx.Bucket([]byte(bCommands)), tx.Bucket([]byte(bTargets)), tx.Bucket([]byte(bResults))
		p := prefix(channel)
		c := tx.Bucket([]byte(bHistory)).Cursor()
		// Seek lands on the first key at or after the bound; step back from it.
		k, v := c.Seek(seqKey(channel, before))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && hasPrefix(k, p) && len(out) < limit; k, v = c.Prev() {
			if len(k) != len(p)+8 || binary.BigEndian.Uint64(k[len(p):]) >= before {
				continue
			}
			var cc storage.ChannelCommand
			if err := getJSON(cb, v, &cc.Command); err != nil {
				return fmt.Errorf("command %s: %w", v, err)
			}
			if err := getJSON(tb, key(string(v), channel), &cc.Target); err != nil {
				return fmt.Errorf("target %s of %s: %w", channel, v, err)
			}
			if r := lastWithPrefix(rb, prefix(string(v), channel)); r != nil {
				var res storage.Result
				if err := json.Unmarshal(r, &res); err != nil {
					return fmt.Errorf("decode result of %s: %w", v, err)
				}
				cc.Result = &res
			}
			out = append(out, cc)
		}
		return nil
	})
	return out, err
}

// lastWithPrefix is the value of the last key starting with p, or nil.
func lastWithPrefix(b *bolt.Bucket, p []byte) []byte {
	c := b.Cursor()
	k, v := c.Seek(append(bytes.Clone(p), 0xff))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k != nil && hasPrefix(k, p) {
		return v
	}
	return nil
}
