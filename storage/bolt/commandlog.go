package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// bCommandLog indexes every target by its queue position alone:
// big-endian seq -> uuid NUL channel. Enqueue writes it in the write that
// stores the target; seqs come from one bucket sequence, so key order is
// commit order across the fleet.
const bCommandLog = "command_log"

func init() {
	registerIndex(bCommandLog, buildCommandLog)
}

// buildCommandLog fills the index from the targets of a database written
// before it existed.
func buildCommandLog(tx *bolt.Tx) ([]string, error) {
	log := tx.Bucket([]byte(bCommandLog))
	err := tx.Bucket([]byte(bTargets)).ForEach(func(k, v []byte) error {
		var t storage.Target
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode target %q: %w", k, err)
		}
		return log.Put(u64(t.Seq), bytes.Clone(k))
	})
	return nil, err
}

// logCommand is what the log scan keeps of the command it last read: a
// bulk command's targets are one run of seqs, so it is read once per run.
type logCommand struct {
	uuid  string
	cmd   storage.Command
	match bool
}

// ListCommands implements storage.CommandLog.
func (s *Store) ListCommands(ctx context.Context, f storage.CommandFilter) ([]storage.ChannelCommand, uint64, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	stopAt := f.Since.Add(-storage.SinceSlack)
	var out []storage.ChannelCommand
	var next uint64
	err := s.view(func(tx *bolt.Tx) error {
		out, next = out[:0], 0
		cb, tb, rb := tx.Bucket([]byte(bCommands)), tx.Bucket([]byte(bTargets)), tx.Bucket([]byte(bResults))
		c := tx.Bucket([]byte(bCommandLog)).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else if k, v = c.Seek(u64(f.Before)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		var last logCommand
		for examined := 0; k != nil; k, v = c.Prev() {
			seq := binary.BigEndian.Uint64(k)
			if len(out) == limit || examined == storage.CommandLogScan {
				next = seq + 1 // the next page starts at this entry
				return nil
			}
			examined++
			uuid, channel, ok := bytes.Cut(v, []byte{sep})
			if !ok {
				return fmt.Errorf("command log entry %d: malformed", seq)
			}
			if f.Status != "" && f.Since.IsZero() {
				// The status alone decides most entries: read it before
				// the command (Since needs the command's time to stop).
				var st struct {
					Status storage.TargetStatus `json:"status"`
				}
				if err := json.Unmarshal(tb.Get(v), &st); err != nil {
					return fmt.Errorf("target %s of %s: %w", channel, uuid, err)
				}
				if st.Status != f.Status {
					continue
				}
			}
			if string(uuid) != last.uuid {
				last = logCommand{uuid: string(uuid)}
				if err := getJSON(cb, uuid, &last.cmd); err != nil {
					return fmt.Errorf("command %s: %w", uuid, err)
				}
				cmd := &last.cmd
				last.match = (f.RequestType == "" || cmd.RequestType == f.RequestType) && f.SenderMatches(cmd.Sender) &&
					(f.Since.IsZero() || !cmd.CreatedAt.Before(f.Since)) && (f.Until.IsZero() || cmd.CreatedAt.Before(f.Until))
				if !f.Since.IsZero() && cmd.CreatedAt.Before(stopAt) {
					return nil // older than anything Since can still select
				}
			}
			if !last.match {
				continue
			}
			cc := storage.ChannelCommand{Command: last.cmd}
			if err := getJSON(tb, v, &cc.Target); err != nil {
				return fmt.Errorf("target %s of %s: %w", channel, uuid, err)
			}
			if f.Status != "" && cc.Target.Status != f.Status {
				continue
			}
			if r := lastWithPrefix(rb, prefix(string(uuid), string(channel))); r != nil {
				var res storage.Result
				if err := json.Unmarshal(r, &res); err != nil {
					return fmt.Errorf("decode result of %s: %w", uuid, err)
				}
				cc.Result = &res
			}
			out = append(out, cc)
		}
		return nil
	})
	return out, next, err
}
