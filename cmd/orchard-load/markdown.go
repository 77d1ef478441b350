package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// reportMain turns JSON reports into the Markdown tables of BENCHMARKS.md:
//
//	orchard-load report compare <a.json> <b.json>... (ratios of each to the last)
//	orchard-load report curve <run.json>...
func reportMain(args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return errors.New("usage: orchard-load report compare A.json B.json... | report curve RUN.json...")
	}
	var reps []*report
	for _, p := range args[1:] {
		r, err := readReport(p)
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	switch args[0] {
	case "compare":
		if len(reps) < 2 {
			return errors.New("report compare: want two files or more")
		}
		writeCompare(stdout, reps)
	case "curve":
		writeCurve(stdout, reps)
	default:
		return fmt.Errorf("report: unknown table %q", args[0])
	}
	return nil
}

func readReport(path string) (*report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// figure is one row of a comparison: how to read it off a report and
// how to print it.
type figure struct {
	name   string
	value  func(*report) float64
	format string
}

// labels are the rows that say how a run was made.
var labels = []struct {
	name string
	text func(*report) string
}{
	{"transport", (*report).transport},
	{"signing", func(r *report) string { return signingText(r.Signing) }},
}

var figures = []figure{
	{"connects/s", func(r *report) float64 { return r.PerSecond }, "%.1f"},
	{"requests (ok)", func(r *report) float64 { return float64(r.Requests) }, "%.0f"},
	{"commands answered", func(r *report) float64 { return float64(r.Answered) }, "%.0f"},
	{"latency p50 (ms)", func(r *report) float64 { return r.P50Ms }, "%.2f"},
	{"latency p90 (ms)", func(r *report) float64 { return r.P90Ms }, "%.2f"},
	{"latency p99 (ms)", func(r *report) float64 { return r.P99Ms }, "%.2f"},
	{"latency max (ms)", func(r *report) float64 { return r.MaxMs }, "%.2f"},
	{"errors", func(r *report) float64 { return float64(r.ErrorCount) }, "%.0f"},
	{"server CPU (s)", func(r *report) float64 { return r.Load.ServerCPUS }, "%.2f"},
	{"server CPU per connect (ms)", func(r *report) float64 { return r.CPUPerConnectMs }, "%.3f"},
	{"load generator CPU per connect (ms)", func(r *report) float64 { return r.ClientCPUPerConnectMs }, "%.3f"},
	{"wakes", func(r *report) float64 { return float64(r.Wakes) }, "%.0f"},
	{"server CPU per wake (ms)", func(r *report) float64 { return r.CPUPerWakeMs }, "%.3f"},
	{"load generator CPU per wake (ms)", func(r *report) float64 { return r.ClientCPUPerWakeMs }, "%.3f"},
	{"server CPU per command answered (ms)", func(r *report) float64 { return r.CPUPerCommandMs }, "%.3f"},
	{"TLS handshakes (measured phase)", func(r *report) float64 { return float64(r.TLSHandshakes) }, "%.0f"},
	{"TLS handshakes resumed (%)", func(r *report) float64 { return r.TLSResumedPct }, "%.0f"},
	{"HTTP/2 connections", func(r *report) float64 { return float64(r.HTTP2Connections) }, "%.0f"},
	{"peak RSS (MiB)", func(r *report) float64 { return float64(r.PeakRSSBytes) / (1 << 20) }, "%.1f"},
}

// writeCompare prints one column per report, then the ratio of each but
// the last to the last.
func writeCompare(w io.Writer, reps []*report) {
	last := reps[len(reps)-1]
	head, rule := "| figure |", "|---|"
	for _, r := range reps {
		head += " " + r.Label + " |"
		rule += "---:|"
	}
	for _, r := range reps[:len(reps)-1] {
		head += fmt.Sprintf(" ratio %s/%s |", r.Label, last.Label)
		rule += "---:|"
	}
	fmt.Fprintf(w, "%s\n%s\n", head, rule)
	for _, l := range labels {
		row := "| " + l.name + " |"
		for _, r := range reps {
			row += " " + l.text(r) + " |"
		}
		fmt.Fprintf(w, "%s%s\n", row, strings.Repeat(" |", len(reps)-1))
	}
	for _, f := range figures {
		row := "| " + f.name + " |"
		for _, r := range reps {
			row += fmt.Sprintf(" "+f.format+" |", f.value(r))
		}
		for _, r := range reps[:len(reps)-1] {
			row += " " + ratio(f.value(r), f.value(last)) + " |"
		}
		fmt.Fprintln(w, row)
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "="
		}
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func writeCurve(w io.Writer, reps []*report) {
	fmt.Fprintf(w, "| run | connects/s | p50 ms | p90 ms | p99 ms | max ms | errors | CPU s | CPU/connect ms | peak RSS MiB |\n")
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", 10))
	for _, r := range reps {
		fmt.Fprintf(w, "| %s | %.1f | %.2f | %.2f | %.2f | %.2f | %d | %.2f | %.3f | %.1f |\n",
			r.Label, r.PerSecond, r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.ErrorCount,
			r.Load.ServerCPUS, r.CPUPerConnectMs, float64(r.PeakRSSBytes)/(1<<20))
	}
}
