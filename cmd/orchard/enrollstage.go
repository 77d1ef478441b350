package main

import (
	"flag"
	"net/url"
)

// incompleteCommand is `orchard enrollment incomplete` (in enrollmentCommands).
var incompleteCommand = &command{name: "incomplete", summary: "the incomplete-enrollment report: sessions that stopped short or took > 30 minutes", setup: api(enrollmentIncomplete),
	help: `One row per portal or Setup Assistant session that never enrolled, or that enrolled after more
than 30 minutes between two stages; the answer starts with the counts of the window (--since, by
default the past 14 days).`,
	examples: []string{"orchard enrollment incomplete", "orchard enrollment incomplete --since 2026-11-01 --platform iOS -o csv"}}

func enrollmentIncomplete(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "sessions")
	since := fs.String("since", "", "sessions started on or after this date (2026-11-01) or RFC 3339 time")
	platform := fs.String("platform", "", "only this platform (iOS, iPadOS, macOS)")
	section := fs.String("section", "", "only sessions whose last stage is in this section: sign-in, terms, category, profile, enrolled")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		for k, v := range map[string]string{"since": *since, "platform": *platform, "section": *section} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return call{method: "GET", path: "/v1/enrollment/incomplete?" + q.Encode(), all: p.all,
			list: &listView{"sessions", []column{{"SESSION", "session_id"}, {"USER", "username"}, {"METHOD", "method"}, {"PLATFORM", "platform"},
				{"LAST STAGE", "last_stage"}, {"AT", "last_stage_at"}, {"SPENT (S)", "time_spent_seconds"}, {"ENROLLED", "enrolled"},
				{"> 30 MIN", "took_over_30_minutes"}}}}, nil
	}
}
