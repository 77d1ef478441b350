package scope_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/internal/scope"
)

// fleet is a fixed list of devices; groups and categories are maps, as the
// users-and-groups store is not there yet.
type fleet struct {
	devs   []scope.Device
	groups map[string][]string
	cats   map[string][]string
	walks  int
}

func (f *fleet) EachDevice(_ context.Context, fn func(scope.Device) error) error {
	f.walks++
	for _, d := range f.devs {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

func (f *fleet) Device(_ context.Context, id string) (scope.Device, bool, error) {
	for _, d := range f.devs {
		if d.ID == id {
			return d, true, nil
		}
	}
	return scope.Device{}, false, nil
}

func (f *fleet) GroupsOf(_ context.Context, id string) ([]string, error)     { return f.groups[id], nil }
func (f *fleet) CategoriesOf(_ context.Context, id string) ([]string, error) { return f.cats[id], nil }

func newFleet() *fleet {
	return &fleet{
		devs: []scope.Device{
			{ID: "iphone-corp", Platform: "iOS", Ownership: "corporate"},
			{ID: "iphone-byod", Platform: "iOS", Ownership: "personal"},
			{ID: "ipad-shared", Platform: "iPadOS", Ownership: "corporate", Users: []string{"ipad-shared:anna", "ipad-shared:ben"}},
			{ID: "mac", Platform: "macOS", Ownership: "corporate", Users: []string{"mac:carol"}},
		},
		groups: map[string][]string{"iphone-byod": {"sales"}, "mac": {"sales", "eng"}},
		cats:   map[string][]string{"iphone-corp": {"kiosk"}, "ipad-shared": {"kiosk"}},
	}
}

func ids(chs []scope.Channel) []string {
	var out []string
	for _, c := range chs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name string
		s    scope.Scope
		want []string
	}{
		{"zero scope selects nothing", scope.Scope{}, nil},
		{"all", scope.Scope{All: true}, []string{"ipad-shared", "iphone-byod", "iphone-corp", "mac"}},
		{"platform alone includes all of it", scope.Scope{Platforms: []string{"iOS"}}, []string{"iphone-byod", "iphone-corp"}},
		{"ownership filter", scope.Scope{Platforms: []string{"iOS", "macOS"}, Ownership: []string{"corporate"}}, []string{"iphone-corp", "mac"}},
		{"group", scope.Scope{Groups: []string{"sales"}}, []string{"iphone-byod", "mac"}},
		{"group filtered by platform", scope.Scope{Groups: []string{"sales"}, Platforms: []string{"macOS"}}, []string{"mac"}},
		{"category", scope.Scope{Categories: []string{"kiosk"}}, []string{"ipad-shared", "iphone-corp"}},
		{"explicit devices skip filters", scope.Scope{Devices: []string{"mac", "gone"}, Platforms: []string{"iOS"}}, []string{"mac"}},
		{"explicit device excluded", scope.Scope{Devices: []string{"mac"}, Exclude: []string{"mac"}}, nil},
		{"exclude a group", scope.Scope{All: true, ExcludeGroups: []string{"eng"}}, []string{"ipad-shared", "iphone-byod", "iphone-corp"}},
		{"exclude a category beats explicit", scope.Scope{Devices: []string{"iphone-corp"}, ExcludeCategories: []string{"kiosk"}}, nil},
		{"user channels", scope.Scope{All: true, Channel: scope.UserChannel}, []string{"ipad-shared:anna", "ipad-shared:ben", "mac:carol"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFleet()
			r := &scope.Resolver{Devices: f, Groups: f, Categories: f}
			got, err := r.Resolve(context.Background(), c.s)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !slices.Equal(g, c.want) {
				t.Fatalf("Resolve = %v, want %v", g, c.want)
			}
			// InScope agrees with Resolve for every channel of the fleet.
			for _, d := range f.devs {
				for _, ch := range append([]string{d.ID}, d.Users...) {
					in, err := r.InScope(context.Background(), c.s, d.ID, ch)
					if err != nil {
						t.Fatal(err)
					}
					if in != slices.Contains(c.want, ch) {
						t.Errorf("InScope(%s) = %v, Resolve disagrees", ch, in)
					}
				}
			}
		})
	}
}

func TestExplicitDevicesDoNotWalkTheFleet(t *testing.T) {
	f := newFleet()
	r := &scope.Resolver{Devices: f}
	if _, err := r.Resolve(context.Background(), scope.Scope{Devices: []string{"mac", "mac"}}); err != nil {
		t.Fatal(err)
	}
	if f.walks != 0 {
		t.Fatalf("an explicit-device scope walked the fleet %d times", f.walks)
	}
}

// Without a group resolver wired, a group scope must match nothing rather
// than everything.
func TestNoGroupResolverMatchesNothing(t *testing.T) {
	r := &scope.Resolver{Devices: newFleet()}
	got, err := r.Resolve(context.Background(), scope.Scope{Groups: []string{"sales"}})
	if err != nil || len(got) != 0 {
		t.Fatalf("Resolve = %v, %v; want nothing", got, err)
	}
}

type failing struct{}

func (failing) GroupsOf(context.Context, string) ([]string, error) { return nil, errors.New("down") }

func TestResolverErrorIsWrapped(t *testing.T) {
	r := &scope.Resolver{Devices: newFleet(), Groups: failing{}}
	_, err := r.Resolve(context.Background(), scope.Scope{Groups: []string{"sales"}})
	if err == nil || err.Error() != "groups of iphone-corp: down" {
		t.Fatalf("err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	bad := []scope.Scope{
		{Channel: "group"},
		{Platforms: []string{"Android"}},
		{Ownership: []string{"stolen"}},
		{Devices: []string{""}},
		{Exclude: make([]string, scope.MaxEntries+1)},
	}
	for _, s := range bad {
		if err := s.Validate(); !errors.Is(err, scope.ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", s, err)
		}
	}
	if err := (scope.Scope{Platforms: []string{"macOS"}, Channel: scope.UserChannel}).Validate(); err != nil {
		t.Fatal(err)
	}
}
