package metrics

import "github.com/prometheus/client_golang/prometheus"

var jobHeldDesc = prometheus.NewDesc("orchard_exclusive_job_held",
	"1 for each scheduled job (ABM sync, identity renewal...) this replica runs now, 0 for those another replica runs.",
	[]string{"job"}, nil)

// SetJobsFunc exports orchard_exclusive_job_held from fn, read at scrape
// time: which of the jobs that run on one replica at a time this one
// holds. Summed over replicas each job should be 1. Call it once.
func (m *Metrics) SetJobsFunc(fn func() map[string]bool) error {
	if fn == nil {
		return errNilFunc
	}
	return m.reg.Register(jobsCollector(fn))
}

type jobsCollector func() map[string]bool

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobHeldDesc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	for job, held := range c() {
		v := 0.0
		if held {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(jobHeldDesc, prometheus.GaugeValue, v, job)
	}
}
