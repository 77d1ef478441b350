package declarative

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// SharedScope scopes declaration sets with Orchard's one scoping model: a
// set applies to the channels its Scope selects (resolved by the same
// Resolver as profiles) and to those it lists in Channels.
type SharedScope struct{ Resolver *scope.Resolver }

var _ Scope = SharedScope{}

// SetScope reads a set's stored scope; ok is false for a set without one.
func SetScope(set *storage.DeclarationSet) (s scope.Scope, ok bool, err error) {
	if len(set.Scope) == 0 || string(set.Scope) == "null" {
		return scope.Scope{}, false, nil
	}
	if err := json.Unmarshal(set.Scope, &s); err != nil {
		return scope.Scope{}, false, fmt.Errorf("declarative: scope of set %q: %w", set.Name, err)
	}
	return s, true, nil
}

// Applies implements Scope.
func (r SharedScope) Applies(ctx context.Context, set *storage.DeclarationSet, channel string) (bool, error) {
	if slices.Contains(set.Channels, channel) {
		return true, nil
	}
	s, ok, err := SetScope(set)
	if err != nil || !ok {
		return false, err
	}
	ch, err := mdm.ParseChannelID(channel)
	if err != nil {
		return false, nil // not a channel ID: nothing applies to it
	}
	return r.Resolver.InScope(ctx, s, ch.DeviceID, channel)
}

// Channels implements Scope.
func (r SharedScope) Channels(ctx context.Context, set *storage.DeclarationSet) ([]string, error) {
	out := slices.Clone(set.Channels)
	s, ok, err := SetScope(set)
	if err != nil || !ok {
		return out, err
	}
	chs, err := r.Resolver.Resolve(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("declarative: resolve set %q: %w", set.Name, err)
	}
	for _, c := range chs {
		out = append(out, c.ID)
	}
	return uniq(out), nil
}
