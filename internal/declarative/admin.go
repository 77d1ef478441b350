package declarative

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/mdm/ddm"
	"github.com/orchardmdm/orchard/storage"
)

// MaxSetChannels bounds a set's explicit channel list.
const MaxSetChannels = 10000

// PutDeclaration checks and stores a declaration (its ServerToken is the
// hash of its content), then makes every channel it reaches sync.
func (e *Engine) PutDeclaration(ctx context.Context, declType, identifier string, payload json.RawMessage) (*storage.StoredDeclaration, error) {
	if strings.HasPrefix(identifier, "orchard.") {
		return nil, fmt.Errorf("%w: identifiers starting with orchard. are Orchard's own", ErrInvalid)
	}
	if err := ddm.Validate(declType, identifier, payload); err != nil {
		return nil, err
	}
	if ddm.Kind(declType) == ddm.KindActivation {
		return nil, fmt.Errorf("%w: Orchard generates the activation of each set; give configurations, assets or management", ErrInvalid)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, payload); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	d := &storage.StoredDeclaration{
		Identifier: identifier, Type: declType, Payload: json.RawMessage(buf.Bytes()),
		ServerToken: ddm.ContentToken(declType, identifier, buf.Bytes()), UpdatedAt: e.now().UTC(),
	}
	if old, err := e.store.Declaration(ctx, identifier); err == nil && old.ServerToken == d.ServerToken {
		return old, nil // unchanged: no new token, nothing to sync
	}
	if err := e.store.PutDeclaration(ctx, d); err != nil {
		return nil, err
	}
	e.syncSetsWith(ctx, identifier)
	return d, nil
}

// DeleteDeclaration removes a declaration no set names.
func (e *Engine) DeleteDeclaration(ctx context.Context, identifier string) error {
	return e.store.DeleteDeclaration(ctx, identifier)
}

// PutSet stores a set of declarations with its channels, then makes every
// channel it reached or reaches now sync.
func (e *Engine) PutSet(ctx context.Context, set *storage.DeclarationSet) error {
	if set.Name == "" || len(set.Name) > 128 || strings.ContainsAny(set.Name, "/\x00") {
		return fmt.Errorf("%w: set name must be 1..128 characters without '/'", ErrInvalid)
	}
	if len(set.Channels) > MaxSetChannels {
		return fmt.Errorf("%w: over %d channels", ErrInvalid, MaxSetChannels)
	}
	if len(set.Scope) > 0 {
		if _, _, err := SetScope(set); err != nil {
			return fmt.Errorf("%w: scope: %v", ErrInvalid, err)
		}
	}
	set.Declarations = uniq(set.Declarations)
	set.Channels = uniq(set.Channels)
	set.UpdatedAt = e.now().UTC()
	var before []string
	if old, err := e.store.DeclarationSet(ctx, set.Name); err == nil {
		if set.Scope == nil {
			set.Scope = old.Scope // a set replaced without a scope keeps its scope
		}
		if before, err = e.scope.Channels(ctx, old); err != nil {
			return err
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	prev := e.tokensOf(ctx, before)
	if err := e.store.PutDeclarationSet(ctx, set); err != nil {
		return err
	}
	now, err := e.scope.Channels(ctx, set)
	if err != nil {
		return fmt.Errorf("set %q is stored, but its channels could not be listed to sync: %w", set.Name, err)
	}
	e.syncChanged(ctx, uniq(append(slices.Clone(before), now...)), prev)
	return nil
}

// ScopeSet gives a set a scope of the shared model (PUT
// /v1/declaration-sets/{name}/scope): channels it takes in or drops whose
// declarations token changes are told to sync.
func (e *Engine) ScopeSet(ctx context.Context, name string, s scope.Scope) (*storage.DeclarationSet, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	set, err := e.store.DeclarationSet(ctx, name)
	if err != nil {
		return nil, err
	}
	if set.Scope, err = json.Marshal(s); err != nil {
		return nil, err
	}
	if err := e.PutSet(ctx, set); err != nil {
		return nil, err
	}
	return set, nil
}

// MembershipChanged is the hook for group and category changes: the
// channels of these devices sync when a set's scope names groups or
// categories (a change can then move them in or out of it).
func (e *Engine) MembershipChanged(ctx context.Context, deviceIDs ...string) {
	sets, err := e.store.DeclarationSets(ctx)
	if err != nil {
		e.log.Error("declarative: list sets after a membership change", "err", err)
		return
	}
	uses := false
	for i := range sets {
		s, ok, err := SetScope(&sets[i])
		if err == nil && ok && (s.UsesGroups() || s.UsesCategories()) {
			uses = true
			break
		}
	}
	if !uses || e.resolver == nil {
		return
	}
	var chans []string
	for _, id := range deviceIDs {
		d, ok, err := e.resolver.Devices.Device(ctx, id)
		if err != nil {
			e.log.Error("declarative: device after a membership change", "device", id, "err", err)
			continue
		}
		if !ok {
			continue
		}
		users, err := e.resolver.UsersOf(ctx, d)
		if err != nil {
			e.log.Error("declarative: users after a membership change", "device", id, "err", err)
			continue
		}
		chans = append(append(chans, d.ID), users...)
	}
	e.Sync(ctx, chans)
}

// tokensOf returns the current declarations token of each channel, so a
// change can tell which ones it really changed.
func (e *Engine) tokensOf(ctx context.Context, channels []string) map[string]string {
	out := make(map[string]string, len(channels))
	for _, ch := range channels {
		if t, err := e.Tokens(ctx, ch); err == nil {
			out[ch] = t.DeclarationsToken
		}
	}
	return out
}

// syncChanged syncs the channels whose token is not what prev recorded.
func (e *Engine) syncChanged(ctx context.Context, channels []string, prev map[string]string) {
	var changed []string
	for _, ch := range channels {
		t, err := e.Tokens(ctx, ch)
		if err == nil && prev[ch] == t.DeclarationsToken {
			continue
		}
		changed = append(changed, ch)
	}
	e.Sync(ctx, changed)
}

// DeleteSet removes a set; its channels sync to a manifest without it.
func (e *Engine) DeleteSet(ctx context.Context, name string) error {
	old, err := e.store.DeclarationSet(ctx, name)
	if err != nil {
		return err
	}
	chans, err := e.scope.Channels(ctx, old)
	if err != nil {
		return err
	}
	prev := e.tokensOf(ctx, chans)
	if err := e.store.DeleteDeclarationSet(ctx, name); err != nil {
		return err
	}
	e.syncChanged(ctx, chans, prev)
	return nil
}

func (e *Engine) syncSetsWith(ctx context.Context, identifier string) {
	sets, err := e.store.DeclarationSets(ctx)
	if err != nil {
		e.log.Error("declarative: list sets to sync", "err", err)
		return
	}
	var chans []string
	for i := range sets {
		if slices.Contains(sets[i].Declarations, identifier) {
			c, err := e.scope.Channels(ctx, &sets[i])
			if err != nil {
				e.log.Error("declarative: list channels to sync", "set", sets[i].Name, "err", err)
				continue
			}
			chans = append(chans, c...)
		}
	}
	e.Sync(ctx, uniq(chans))
}

// Sync queues, for each channel, the DeclarativeManagement command with
// its current SyncTokens and pushes it. A channel that is not enrolled is
// skipped: it gets the manifest when it enrolls and checks in.
func (e *Engine) Sync(ctx context.Context, channels []string) {
	for _, ch := range channels {
		if err := e.syncOne(ctx, ch); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				e.log.Debug("declarative: channel not enrolled, not synced", "channel", ch)
				continue
			}
			e.log.Error("declarative: queue sync", "channel", ch, "err", err)
		}
	}
}

func (e *Engine) syncOne(ctx context.Context, channel string) error {
	t, err := e.Tokens(ctx, channel)
	if err != nil {
		return err
	}
	data, err := json.Marshal(ddm.TokensResponse{SyncTokens: t})
	if err != nil {
		return err
	}
	c, err := e.cmds.Build("DeclarativeManagement", map[string]any{"Data": base64.StdEncoding.EncodeToString(data)})
	if err != nil {
		return err
	}
	_, err = e.cmds.Queue(ctx, []string{channel}, command.Push, c)
	return err
}

// Declarations lists the stored declarations.
func (e *Engine) Declarations(ctx context.Context) ([]storage.StoredDeclaration, error) {
	return e.store.Declarations(ctx)
}

// Declaration returns one.
func (e *Engine) Declaration(ctx context.Context, id string) (*storage.StoredDeclaration, error) {
	return e.store.Declaration(ctx, id)
}

// Sets lists the declaration sets.
func (e *Engine) Sets(ctx context.Context) ([]storage.DeclarationSet, error) {
	return e.store.DeclarationSets(ctx)
}

// Set returns one.
func (e *Engine) Set(ctx context.Context, name string) (*storage.DeclarationSet, error) {
	return e.store.DeclarationSet(ctx, name)
}

// ChannelStatus is a channel's declarative status with its current tokens.
type ChannelStatus struct {
	Channel           string                              `json:"channel"`
	DeclarationsToken string                              `json:"declarations_token"`
	ReportedAt        string                              `json:"reported_at,omitempty"`
	Declarations      map[string]storage.DeclarationState `json:"declarations"`
	Items             map[string]json.RawMessage          `json:"items"`
	Reports           []storage.RawDDMReport              `json:"reports"`
}

// Status returns what a channel last reported; a channel that never
// reported has empty maps.
func (e *Engine) Status(ctx context.Context, channel string) (*ChannelStatus, error) {
	t, err := e.Tokens(ctx, channel)
	if err != nil {
		return nil, err
	}
	out := &ChannelStatus{Channel: channel, DeclarationsToken: t.DeclarationsToken,
		Declarations: map[string]storage.DeclarationState{}, Items: map[string]json.RawMessage{}, Reports: []storage.RawDDMReport{}}
	st, err := e.store.DDMStatus(ctx, channel)
	if errors.Is(err, storage.ErrNotFound) {
		return out, nil
	} else if err != nil {
		return nil, err
	}
	out.ReportedAt = ddm.Timestamp(st.UpdatedAt)
	if st.Declarations != nil {
		out.Declarations = st.Declarations
	}
	if st.Items != nil {
		out.Items = st.Items
	}
	if st.Raw != nil {
		out.Reports = st.Raw
	}
	return out, nil
}

// DeclarationChannelState is one channel's state of a declaration.
type DeclarationChannelState struct {
	Channel string `json:"channel"`
	storage.DeclarationState
	// Current: the device reported the declaration's current ServerToken.
	Current bool `json:"current"`
}

// DeclarationStatus returns every channel's reported state of one
// declaration, by channel.
func (e *Engine) DeclarationStatus(ctx context.Context, identifier string) ([]DeclarationChannelState, error) {
	d, err := e.store.Declaration(ctx, identifier)
	if err != nil {
		return nil, err
	}
	all, err := e.store.DDMStatuses(ctx)
	if err != nil {
		return nil, err
	}
	out := []DeclarationChannelState{}
	for _, st := range all {
		if s, ok := st.Declarations[identifier]; ok {
			out = append(out, DeclarationChannelState{Channel: st.Channel, DeclarationState: s, Current: s.ServerToken == d.ServerToken})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out, nil
}

func uniq(s []string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
