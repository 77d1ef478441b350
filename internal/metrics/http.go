package metrics

import (
	"net/http"
	"strconv"
	"time"
)

// Instrument wraps a handler that routes with http.ServeMux (directly or
// through nested muxes that pass the same *http.Request on) and observes
// orchard_http_request_duration_seconds labelled with the matched
// pattern, read from r.Pattern after serving. Requests no pattern matched
// are labelled "unmatched"; the raw path is never a label.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := "unmatched"
		if r.Pattern != "" {
			route = m.routes.label(r.Pattern)
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		m.httpDuration.WithLabelValues(route, known(r.Method, httpMethods), strconv.Itoa(code)).
			Observe(time.Since(start).Seconds())
	})
}

// statusRecorder remembers the status code; Unwrap lets
// http.ResponseController reach the real writer (Flush, deadlines).
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
