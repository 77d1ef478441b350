package metrics

import "testing"

func TestJobsHeldReadAtScrape(t *testing.T) {
	m := New()
	held := map[string]bool{"dep-sync": true, "identity-renewal": false}
	if err := m.SetJobsFunc(func() map[string]bool { return held }); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m)
	if v, ok := value(fams, "orchard_exclusive_job_held", lbl("job", "dep-sync")); !ok || v != 1 {
		t.Errorf("dep-sync = %v (%v), want 1", v, ok)
	}
	if v, ok := value(fams, "orchard_exclusive_job_held", lbl("job", "identity-renewal")); !ok || v != 0 {
		t.Errorf("identity-renewal = %v (%v), want 0", v, ok)
	}
	held = map[string]bool{"identity-renewal": true}
	if v, _ := value(scrape(t, m), "orchard_exclusive_job_held", lbl("job", "identity-renewal")); v != 1 {
		t.Errorf("after takeover identity-renewal = %v, want 1", v)
	}
	if err := m.SetJobsFunc(nil); err == nil {
		t.Error("nil func accepted")
	}
}
