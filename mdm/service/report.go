package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/storage"
)

// Report handles a device's PUT to the server URL: it stores the result
// (if any) and returns the next command plist, or nil for an empty 200.
func (s *Service) Report(ctx context.Context, id *identity.Identity, r *mdm.Report) ([]byte, error) {
	ch, err := s.boundDevice(ctx, id.Hash, r.Channel)
	if err != nil {
		return nil, err
	}
	r.Channel = ch
	channel := r.Channel.ID()
	if err := s.checkEnrolled(ctx, r.Channel); err != nil {
		return nil, err
	}
	s.touch(channel)
	var cmd *storage.Command
	if r.Status == mdm.StatusIdle {
		// Observers first, so a command one queues goes out in this answer.
		s.emit(ctx, Connected{Channel: channel})
		if err := s.record(ctx, ReportReceived{Report: r}); err != nil {
			return nil, err
		}
		// A new connection sequence: NotNow'd commands are due again.
		cmd, err = s.store.IdleNext(ctx, channel)
	} else {
		if err := s.storeResult(ctx, channel, r); err != nil {
			return nil, err
		}
		if err := s.record(ctx, ReportReceived{Report: r}); err != nil {
			return nil, err
		}
		cmd, err = s.store.Next(ctx, channel)
	}
	if err != nil || cmd == nil {
		s.inflight.Delete(channel)
		return nil, err
	}
	s.inflight.Store(channel, cmd.UUID)
	s.emit(ctx, CommandDelivered{Channel: channel, Command: cmd})
	return cmd.Raw, nil
}

func (s *Service) storeResult(ctx context.Context, channel string, r *mdm.Report) error {
	res := &storage.Result{
		CommandUUID: r.CommandUUID,
		ChannelID:   channel,
		Status:      storage.TargetStatus(r.Status),
		Raw:         r.Raw,
		At:          s.now(),
	}
	for _, e := range r.ErrorChain {
		res.ErrorChain = append(res.ErrorChain, storage.ErrorChain{
			ErrorCode: e.ErrorCode, ErrorDomain: e.ErrorDomain,
			LocalizedDescription: e.LocalizedDescription, USEnglishDescription: e.USEnglishDescription,
		})
	}
	if s.effects != nil {
		res.Effect = s.effects.ResultEffect(res, r)
	}
	ignored, err := s.store.StoreResult(ctx, res)
	if errors.Is(err, storage.ErrNotFound) {
		s.log.Warn("result for a command never offered to this channel", "channel", channel, "command", r.CommandUUID, "status", r.Status)
		return fmt.Errorf("%w: command %.64q was never offered to this channel", ErrBadRequest, r.CommandUUID)
	}
	if err != nil {
		return err
	}
	if ignored {
		// A repeat, or a late answer after the first final one: that one stands.
		s.log.Info("result ignored: the command already has this or a final status", "channel", channel, "command", r.CommandUUID, "status", r.Status)
		return nil
	}
	s.emit(ctx, ResultStored{Result: res})
	return nil
}

// ResultEffects says what a device's result changes besides its command's
// state (internal/inventory: the answer it keeps and the inventory it
// updates). The service has that written in the result's own transaction:
// one commit per result, and what is derived is durable with the result.
type ResultEffects interface {
	// ResultEffect returns the result's storage.Result.Effect (nil: none);
	// rep is the decoded report the result came in.
	ResultEffect(r *storage.Result, rep *mdm.Report) func(requestType string) *storage.ResultEffect
}

// WithResultEffects has what e derives from each result written with it.
func WithResultEffects(e ResultEffects) Option { return func(s *Service) { s.effects = e } }

// ReportUnreadable is called when an identified device sent a report body
// that could not be decoded: the command last offered on its device
// channel is set aside until the next Idle, so it is offered again later
// but cannot block the commands behind it.
func (s *Service) ReportUnreadable(ctx context.Context, id *identity.Identity) {
	dev, err := s.store.DeviceForCert(ctx, id.Hash)
	if err != nil {
		return
	}
	v, ok := s.inflight.LoadAndDelete(dev)
	if !ok {
		return
	}
	if err := s.store.Defer(ctx, dev, v.(string)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.Error("defer command after unreadable result", "device", dev, "err", err)
	}
}
