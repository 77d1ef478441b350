package server

import (
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/metrics"
	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/scep"
)

// DefaultRateLimit is each unauthenticated limit's budget per source
// address and minute (and its burst). Only failures and anonymous lookups
// spend it, so thousands of devices enrolling from behind one NAT stay far
// below it, and guessing secrets of 160 bits or more gains nothing from it.
const DefaultRateLimit = 600

// limitOptions builds the per-address limiters for SCEP and /enroll/*;
// perMinute 0 is the default, negative turns them off.
func limitOptions(perMinute int, refused func(string)) ([]scep.Option, []enroll.Option, error) {
	if perMinute < 0 {
		return nil, nil, nil
	}
	if perMinute == 0 {
		perMinute = DefaultRateLimit
	}
	var ls [3]*ratelimit.Limiter
	for i, name := range []string{metrics.LimitSCEPChallenge, metrics.LimitEnrollToken, metrics.LimitEnrollMachineInfo} {
		l, err := ratelimit.New(name, perMinute, perMinute, ratelimit.WithObserver(refused))
		if err != nil {
			return nil, nil, err
		}
		ls[i] = l
	}
	return []scep.Option{scep.WithLimiter(ls[0])}, []enroll.Option{enroll.WithLimits(ls[1], ls[2])}, nil
}
