# Fan-out and memory part of `make bench` (issue #17), sourced by
# bench/run.sh after lib.sh: the Go benchmarks BenchmarkBulkCommand and
# BenchmarkIdleHeap (internal/server/bulk_bench_test.go), each run once on
# FANOUT_DEVICES seeded devices (100,000 by default). Each starts the real
# server in a process of its own on a real bbolt file and measures that
# process: the bulk command against the fake APNs on loopback TLS, and the
# idle heap before and after FANOUT_CONNECT of the devices (all by default)
# connected once each over loopback TLS with a signed Idle.

FANOUT_DEVICES=${FANOUT_DEVICES:-100000}
FANOUT_CONNECT=${FANOUT_CONNECT:-$FANOUT_DEVICES}
FANOUT_OUT="$OUT/fanout.txt"

# fanout_bench: builds the test binary and runs both benchmarks, one at a
# time, into $FANOUT_OUT.
fanout_bench() {
	mkdir -p "$BIN" "$OUT"
	echo "== fan-out and memory: $FANOUT_DEVICES devices (bulk command, then idle heap with $FANOUT_CONNECT connected)"
	"$GO" test -c -o "$BIN/server.test" ./internal/server
	local b cmd
	: >"$FANOUT_OUT"
	for b in BulkCommand IdleHeap; do
		cmd=("$BIN/server.test" -test.run '^$' -test.bench "^Benchmark$b\$" -test.benchtime 1x
			-bulk.devices "$FANOUT_DEVICES" -idle.connect "$FANOUT_CONNECT")
		logcmd "${cmd[@]}"
		# The benchmark fails (and says so) when a push was dropped: its
		# figures are still written, and reported as measured.
		(cd "$ROOT/internal/server" && "${cmd[@]}") 2>&1 | tee -a "$FANOUT_OUT" | grep -E '^(Benchmark|---|\s+bulk)' || true
	done
	if ! grep -q '^BenchmarkBulkCommand' "$FANOUT_OUT" || ! grep -q '^BenchmarkIdleHeap' "$FANOUT_OUT"; then
		echo "fan-out benchmarks wrote no figures; see $FANOUT_OUT" >&2
		return 1
	fi
}

# fmetric <benchmark> <unit>: the figure a benchmark reported in that unit,
# null when it reported none.
fmetric() {
	awk -v b="^Benchmark$1-" -v u="$2" '$0 ~ b { for (i = 4; i < NF; i++) if ($(i + 1) == u) { print $i; found = 1; exit } }
		END { if (!found) print "null" }' "$FANOUT_OUT"
}

# fnum <number|null> <decimals>
fnum() { if [[ $1 == null ]]; then echo "n/a"; else printf "%.${2}f" "$1"; fi; }

# write_fanout_targets: the fan-out rows of the Targets table.
write_fanout_targets() {
	local queued dropped pps rss heap connected
	queued=$(fmetric BulkCommand s-to-queued)
	dropped=$(fmetric BulkCommand dropped)
	pps=$(fmetric BulkCommand pushes/s)
	rss=$(fmetric BulkCommand peak-RSS-MB)
	connected=$(fmetric IdleHeap idle-heap-connected-MB)
	heap=$connected
	local heap_label="measured with all $FANOUT_DEVICES connected once"
	if ((FANOUT_CONNECT < FANOUT_DEVICES)); then
		heap=$(fmetric IdleHeap idle-heap-all-connected-MB)
		heap_label="extrapolated from $FANOUT_CONNECT connected (seeded heap + per-device heap x $FANOUT_DEVICES)"
	fi
	echo "| bulk command to $FANOUT_DEVICES devices queued (API answered) in at most 5 s | $(fnum "$queued" 2) s | $(verdict "$queued" "<= 5") |"
	echo "| every device of the bulk command woken: no push dropped | $(fnum "$dropped" 0) dropped | $(verdict "$dropped" "== 0") |"
	echo "| bulk command end to end to the fake APNs on loopback: at least 10,000 pushes/s | $(fnum "$pps" 0) pushes/s | $(verdict "$pps" ">= 10000") |"
	echo "| peak RSS during the bulk command at most 300 MB | $(fnum "$rss" 1) MB | $(verdict "$rss" "<= 300") |"
	echo "| Go heap of an idle server with $FANOUT_DEVICES enrolled devices at most 64 MB | $(fnum "$heap" 1) MB, $heap_label | $(verdict "$heap" "<= 64") |"
}

# write_fanout_markdown: the section of BENCHMARKS.md.
write_fanout_markdown() {
	local f
	echo
	echo "## Fan-out and memory at $FANOUT_DEVICES devices (issue #17)"
	echo
	echo "Go benchmarks in internal/server/bulk_bench_test.go, each run once (\`-benchtime 1x\`). Each seeds $FANOUT_DEVICES"
	echo "enrolled devices with push tokens into a real bbolt file (concurrent writers, group-committed), starts the real"
	echo "server on it in a process of its own (the test binary run again; its RSS is the server's alone), waits until that"
	echo "process is idle (no CPU tick in three 100 ms samples: the start-up renewal scan is done), and measures the process."
	echo
	echo "- **Bulk command** (BenchmarkBulkCommand): a push certificate is uploaded, then one \`POST /v1/commands\`"
	echo "  (ProfileList) to all $FANOUT_DEVICES devices. *Queued* is the time to the API's answer (every target committed"
	echo "  durably, fsync on); *pushes/s* counts from the POST until the fake APNs (apns/apnstest, HTTP/2 on loopback TLS,"
	echo "  in the benchmark's process, answering 200 as Apple does) has received one push per device, or none came for 10 s"
	echo "  (then the rest counts as *dropped*). Server CPU is the server process's utime+stime over that span. Peak RSS is"
	echo "  VmHWM, reset (\`/proc/<pid>/clear_refs\`) just before the POST; RssAnon and RssFile (bbolt's mmap of the"
	echo "  database file) are sampled every 10 ms for their peaks. Peak heap is the highest Go heap (objects, live or not yet"
	echo "  collected) sampled every 5 ms; idle heaps are live heap after a GC."
	echo "- **Idle heap** (BenchmarkIdleHeap): the first $FANOUT_CONNECT devices get real certificates from the data dir's CA"
	echo "  (issuance records stored, one RSA-2048 device key shared: key generation is not what is measured) and an inventory"
	echo "  answered, as enrolled devices have; each then connects once over loopback TLS with a freshly signed Idle"
	echo "  (Mdm-Signature verified, 32 devices at a time), which the server answers with nothing to do. Live heap after a GC"
	echo "  before any connect and after all of them (the server idle again); the difference per connected device is what"
	echo "  the server keeps of each device that connected (certificate verdicts, bindings, inventory schedule)."
	echo
	echo "| figure | value |"
	echo "|---|---:|"
	echo "| bulk command: time to the API's answer (s) | $(fnum "$(fmetric BulkCommand s-to-queued)" 2) |"
	echo "| bulk command: pushes/s end to end | $(fnum "$(fmetric BulkCommand pushes/s)" 0) |"
	echo "| bulk command: pushes dropped | $(fnum "$(fmetric BulkCommand dropped)" 0) |"
	echo "| bulk command: server CPU (s) | $(fnum "$(fmetric BulkCommand server-CPU-s)" 2) |"
	echo "| bulk command: peak RSS (MB) | $(fnum "$(fmetric BulkCommand peak-RSS-MB)" 1) |"
	echo "| bulk command: peak anonymous RSS (MB) | $(fnum "$(fmetric BulkCommand peak-anon-RSS-MB)" 1) |"
	echo "| bulk command: peak file-backed RSS, bbolt's mmap (MB) | $(fnum "$(fmetric BulkCommand peak-file-RSS-MB)" 1) |"
	echo "| bulk command: peak Go heap (MB) | $(fnum "$(fmetric BulkCommand peak-heap-MB)" 1) |"
	echo "| bulk command: live heap before / after (MB) | $(fnum "$(fmetric BulkCommand idle-heap-before-MB)" 1) / $(fnum "$(fmetric BulkCommand idle-heap-after-MB)" 1) |"
	echo "| idle heap, $FANOUT_DEVICES seeded, none connected (MB) | $(fnum "$(fmetric IdleHeap idle-heap-seeded-MB)" 1) |"
	echo "| idle heap, $FANOUT_CONNECT of them connected once (MB) | $(fnum "$(fmetric IdleHeap idle-heap-connected-MB)" 1) |"
	echo "| heap per connected device (bytes) | $(fnum "$(fmetric IdleHeap heap-B/connected-device)" 0) |"
	if ((FANOUT_CONNECT < FANOUT_DEVICES)); then
		echo "| idle heap with all $FANOUT_DEVICES connected, extrapolated (MB) | $(fnum "$(fmetric IdleHeap idle-heap-all-connected-MB)" 1) |"
	fi
	echo
	f=$(grep -E '^\s+bulk_bench_test.go:[0-9]+: seeded' "$FANOUT_OUT" | head -1 | sed -E 's/^\s+bulk_bench_test.go:[0-9]+: //')
	[[ -n $f ]] && echo "Bulk command store: $f." && echo
	echo "The benchmarks' own output is in .bench/out/fanout.txt."
}
