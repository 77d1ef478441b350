// Package declarative is Orchard's Declarative Device Management: it builds
// each channel's manifest from the declaration sets scoped to it, answers
// the device's DeclarativeManagement endpoints, keeps its status, and when
// a channel's declarations token changes queues the DeclarativeManagement
// command (through the command service) so the device syncs.
package declarative

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/mdm/ddm"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
)

// Errors the admin edge maps to status codes.
var (
	ErrInvalid  = ddm.ErrInvalid
	ErrNotFound = storage.ErrNotFound
	ErrConflict = storage.ErrConflict
)

// Commands is what the engine needs of the command service.
type Commands interface {
	Build(requestType string, payload map[string]any) (*storage.Command, error)
	Queue(ctx context.Context, channels []string, wake command.Wake, cmds ...*storage.Command) (int, error)
}

// Scope tells which channels a declaration set applies to. The default
// scopes a set to its explicit Channels; the shared scoping model
// (internal/scope, with groups, categories and platforms) plugs in here.
type Scope interface {
	// Applies says whether set applies to the channel (manifests).
	Applies(ctx context.Context, set *storage.DeclarationSet, channel string) (bool, error)
	// Channels lists every channel set applies to (whom to sync).
	Channels(ctx context.Context, set *storage.DeclarationSet) ([]string, error)
}

type explicitScope struct{}

func (explicitScope) Applies(_ context.Context, set *storage.DeclarationSet, channel string) (bool, error) {
	return slices.Contains(set.Channels, channel), nil
}

func (explicitScope) Channels(_ context.Context, set *storage.DeclarationSet) ([]string, error) {
	return set.Channels, nil
}

// Engine is the DDM service. Its methods are safe for concurrent use.
type Engine struct {
	store storage.DeclarationStore
	cmds  Commands
	scope Scope
	// resolver, when set, answers membership changes (WithResolver).
	resolver *scope.Resolver
	log      *slog.Logger
	now      func() time.Time
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// WithScope replaces explicit channel lists by another scoping model.
func WithScope(s Scope) Option { return func(e *Engine) { e.scope = s } }

// WithResolver scopes sets with the shared model (SharedScope) and follows
// group and category changes of the resolver's devices.
func WithResolver(r *scope.Resolver) Option {
	return func(e *Engine) { e.scope, e.resolver = SharedScope{Resolver: r}, r }
}

// New builds an Engine.
func New(store storage.DeclarationStore, cmds Commands, opts ...Option) (*Engine, error) {
	if store == nil || cmds == nil {
		return nil, errors.New("declarative: store and command service are required")
	}
	e := &Engine{store: store, cmds: cmds, scope: explicitScope{}, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

var _ service.Declarative = (*Engine)(nil)

// Identifiers of what Orchard generates for every channel.
const (
	capabilitiesID  = "orchard.management.server-capabilities"
	subscriptionsID = "orchard.status-subscriptions"
	statusActID     = "orchard.activation.status-subscriptions"
	setActPrefix    = "orchard.activation.set."
)

// subscribedItems are the status items Orchard asks every device for.
var subscribedItems = []string{
	"device.operating-system.version",
	"device.operating-system.build-version",
	"softwareupdate.install-state",
	"softwareupdate.pending-version",
	"softwareupdate.failure-reason",
	"softwareupdate.install-reason",
}

func generated(declType, id string, payload any) ddm.Declaration {
	raw, _ := json.Marshal(payload)
	return ddm.Declaration{Type: declType, Identifier: id, ServerToken: ddm.ContentToken(declType, id, raw), Payload: raw}
}

// base is what every channel gets: server capabilities and the status
// subscriptions with their activation.
var base = func() []ddm.Declaration {
	items := make([]map[string]string, len(subscribedItems))
	for i, n := range subscribedItems {
		items[i] = map[string]string{"Name": n}
	}
	return []ddm.Declaration{
		generated("com.apple.management.server-capabilities", capabilitiesID, map[string]any{
			"Version": "1.0", "SupportedFeatures": map[string]any{},
		}),
		generated("com.apple.configuration.management.status-subscriptions", subscriptionsID, map[string]any{"StatusItems": items}),
		generated("com.apple.activation.simple", statusActID, map[string]any{"StandardConfigurations": []string{subscriptionsID}}),
	}
}()

// manifest is a channel's declarations and the time they last changed.
type manifest struct {
	decls   []ddm.Declaration
	changed time.Time
}

func (m *manifest) find(kind, id string) (ddm.Declaration, bool) {
	for _, d := range m.decls {
		if d.Identifier == id && ddm.Kind(d.Type) == kind {
			return d, true
		}
	}
	return ddm.Declaration{}, false
}

// Manifest builds the channel's declarations: the base, and per set that
// applies its declarations and a generated activation of its
// configurations.
func (e *Engine) manifest(ctx context.Context, channel string) (*manifest, error) {
	sets, err := e.store.DeclarationSets(ctx)
	if err != nil {
		return nil, err
	}
	m := &manifest{decls: append([]ddm.Declaration(nil), base...)}
	seen := map[string]bool{}
	for i := range sets {
		set := &sets[i]
		ok, err := e.scope.Applies(ctx, set, channel)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if set.UpdatedAt.After(m.changed) {
			m.changed = set.UpdatedAt
		}
		var configs []string
		for _, id := range set.Declarations {
			d, err := e.store.Declaration(ctx, id)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted meanwhile: the device removes it
			} else if err != nil {
				return nil, err
			}
			if d.UpdatedAt.After(m.changed) {
				m.changed = d.UpdatedAt
			}
			if ddm.Kind(d.Type) == ddm.KindConfiguration {
				configs = append(configs, d.Identifier)
			}
			if seen[d.Identifier] {
				continue
			}
			seen[d.Identifier] = true
			m.decls = append(m.decls, ddm.Declaration{Type: d.Type, Identifier: d.Identifier, ServerToken: d.ServerToken, Payload: d.Payload})
		}
		if len(configs) > 0 {
			sort.Strings(configs)
			m.decls = append(m.decls, generated("com.apple.activation.simple", setActPrefix+set.Name, map[string]any{"StandardConfigurations": configs}))
		}
	}
	return m, nil
}

// Tokens returns the channel's current sync tokens.
func (e *Engine) Tokens(ctx context.Context, channel string) (ddm.SyncTokens, error) {
	m, err := e.manifest(ctx, channel)
	if err != nil {
		return ddm.SyncTokens{}, err
	}
	return tokens(m), nil
}

func tokens(m *manifest) ddm.SyncTokens {
	return ddm.SyncTokens{DeclarationsToken: ddm.NewManifest(m.decls).DeclarationsToken, Timestamp: ddm.Timestamp(m.changed)}
}

// DeclarativeManagement answers one endpoint for a verified channel.
func (e *Engine) DeclarativeManagement(ctx context.Context, channel, endpoint string, data []byte) ([]byte, error) {
	ep, err := ddm.ParseEndpoint(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", service.ErrBadRequest, err)
	}
	if ep.Name == "status" {
		return nil, e.status(ctx, channel, data)
	}
	m, err := e.manifest(ctx, channel)
	if err != nil {
		return nil, err
	}
	switch ep.Name {
	case "tokens":
		return json.Marshal(ddm.TokensResponse{SyncTokens: tokens(m)})
	case "declaration-items":
		return json.Marshal(ddm.NewManifest(m.decls))
	}
	d, ok := m.find(ep.Kind, ep.Identifier)
	if !ok {
		return nil, fmt.Errorf("%w: no %s %.80q for this channel", service.ErrNotFound, ep.Kind, ep.Identifier)
	}
	return json.Marshal(d)
}

// maxRawReport bounds a raw report kept in a channel's status record.
const maxRawReport = 16 << 10

// status merges a full or partial report into the channel's status.
func (e *Engine) status(ctx context.Context, channel string, data []byte) error {
	r, err := ddm.ParseStatus(data)
	if err == nil && !json.Valid(data) {
		err = fmt.Errorf("%w: status report has trailing data", ddm.ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", service.ErrBadRequest, err)
	}
	now := e.now().UTC()
	return e.store.UpdateDDMStatus(ctx, channel, func(st *storage.DDMStatus) error {
		st.UpdatedAt = now
		if st.Items == nil {
			st.Items = map[string]json.RawMessage{}
		}
		if st.Declarations == nil {
			st.Declarations = map[string]storage.DeclarationState{}
		}
		for k := range r.Items {
			// A value replaces what was reported under or above its path
			// (a dictionary that emptied, a leaf that became one).
			for old := range st.Items {
				if strings.HasPrefix(old, k+".") || strings.HasPrefix(k, old+".") {
					delete(st.Items, old)
				}
			}
		}
		for k, v := range r.Items {
			if len(st.Items) >= ddm.MaxStatusItems && st.Items[k] == nil {
				continue
			}
			st.Items[k] = v
		}
		for _, d := range r.Declarations {
			if len(st.Declarations) >= ddm.MaxStatusDeclarations && st.Declarations[d.Identifier].Kind == "" {
				continue
			}
			st.Declarations[d.Identifier] = storage.DeclarationState{
				Kind: d.Kind, ServerToken: d.ServerToken, Active: d.Active, Valid: d.Valid, Reasons: d.Reasons, At: now,
			}
		}
		raw := json.RawMessage(data)
		if len(data) > maxRawReport {
			// Kept per channel with its status: a big one is noted, not kept.
			raw = json.RawMessage(fmt.Sprintf(`{"omitted_bytes":%d}`, len(data)))
		}
		st.Raw = append(slices.Clone(st.Raw), storage.RawDDMReport{At: now, Body: raw})
		return nil
	})
}
