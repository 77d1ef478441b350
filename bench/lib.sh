# Shared by bench/run.sh and bench/enroll200.sh: build, start and stop the
# servers on loopback, write BENCHMARKS.md. Servers are stopped by the PID
# this script started, never by name.

BIN="$ROOT/.bench/bin"
RUN="$ROOT/.bench/run"
OUT="$ROOT/.bench/out"
KEYS="$ROOT/.bench/keys"
GO=${GO:-go}
NANOMDM_VERSION=v0.9.0
SCEPSERVER_VERSION=v2.3.0
ORCHARD_ADDR=127.0.0.1:18443
NANO_ADDR=127.0.0.1:19000
SCEP_ADDR=127.0.0.1:19080
NANO_API_KEY=bench-nanomdm-api-key
SCEP_CHALLENGE=bench-scep-challenge

build_all() {
	mkdir -p "$BIN"
	echo "building orchard and orchard-load"
	"$GO" build -o "$BIN/orchard" ./cmd/orchard
	"$GO" build -o "$BIN/orchard-load" ./cmd/orchard-load
	if ! "$GO" version -m "$BIN/nanomdm" 2>/dev/null | grep -q "mod.*github.com/micromdm/nanomdm.*$NANOMDM_VERSION"; then
		echo "installing nanomdm $NANOMDM_VERSION and scepserver $SCEPSERVER_VERSION into $BIN"
		GOBIN="$BIN" "$GO" install "github.com/micromdm/nanomdm/cmd/nanomdm@$NANOMDM_VERSION"
		GOBIN="$BIN" "$GO" install "github.com/micromdm/scep/v2/cmd/scepserver@$SCEPSERVER_VERSION"
	fi
	[[ -x "$BIN/scepserver" ]] || GOBIN="$BIN" "$GO" install "github.com/micromdm/scep/v2/cmd/scepserver@$SCEPSERVER_VERSION"
}

# wait_url <url> <pid>: until the URL answers (any status) or the process dies.
wait_url() {
	local url=$1 pid=$2
	for _ in $(seq 1 300); do
		if curl -s -o /dev/null "$url"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "server $pid exited; see its log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "timed out waiting for $url" >&2
	return 1
}

# Servers still running when the script exits (error or Ctrl-C) are stopped.
STARTED=()
cleanup() {
	local p
	for p in "${STARTED[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# start_orchard <data-dir>: sets ORCHARD_PID.
start_orchard() {
	local data=$1
	mkdir -p "$data"
	"$BIN/orchard" serve --data "$data" --listen "$ORCHARD_ADDR" --public-url "https://$ORCHARD_ADDR" \
		--plain-http=true --log-level warn >>"$data.log" 2>&1 &
	ORCHARD_PID=$!
	STARTED+=("$ORCHARD_PID")
	wait_url "http://$ORCHARD_ADDR/healthz" "$ORCHARD_PID"
}

# start_nanomdm <dir>: micromdm's scepserver (its CA) and NanoMDM with
# filekv storage and -ca on that CA, so NanoMDM verifies Mdm-Signature.
# Sets NANO_PID and SCEP_PID.
start_nanomdm() {
	local dir=$1
	mkdir -p "$dir"
	"$BIN/scepserver" ca -init -depot "$dir/depot" -keySize 2048 >>"$dir/scep.log" 2>&1
	"$BIN/scepserver" -depot "$dir/depot" -http-addr "$SCEP_ADDR" -challenge "$SCEP_CHALLENGE" >>"$dir/scep.log" 2>&1 &
	SCEP_PID=$!
	STARTED+=("$SCEP_PID")
	"$BIN/nanomdm" -ca "$dir/depot/ca.pem" -api "$NANO_API_KEY" -listen "$NANO_ADDR" \
		-storage filekv -storage-dsn "$dir/db" -checkin >>"$dir/nanomdm.log" 2>&1 &
	NANO_PID=$!
	STARTED+=("$NANO_PID")
	wait_url "http://$SCEP_ADDR/scep?operation=GetCACaps" "$SCEP_PID"
	wait_url "http://$NANO_ADDR/version" "$NANO_PID"
}

# stop_pid <pid>...: SIGTERM, wait.
stop_pid() {
	local p
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

# pick_median <out.json> <run.json>...: copies the run with the median
# connects/s (enrollment runs: median enrollment wall time).
pick_median() {
	local out=$1
	shift
	local key='if .requests > 0 then .connects_per_s else .enroll.wall_s end'
	local pick
	pick=$(for f in "$@"; do echo "$(jq -r "$key" "$f") $f"; done | sort -g | sed -n "$((($# + 1) / 2))p" | cut -d' ' -f2-)
	cp "$pick" "$out"
}

# runs_line <prefix>: "a/s @ b ms CPU" for every repeated run of a measurement.
runs_line() {
	local f out=()
	for f in "$1"-[0-9]*.json; do
		out+=("$(jq -r '"\(.connects_per_s*10|round/10)/s, \(.cpu_per_connect_ms // 0 | .*1000|round/1000) ms CPU/connect"' "$f")")
	done
	local IFS=';'
	echo "${out[*]}" | sed 's/;/; /g'
}

# jqf <file> <expr>: one number from a JSON report.
jqf() { jq -r "$2" "$1"; }

# jratio <a.json> <b.json> <field>: a.field / b.field, or null when either
# is 0 (CPU figures of runs too short for the 10 ms /proc clock).
jratio() {
	jq -n --slurpfile a "$1" --slurpfile b "$2" "(\$a[0].$3 // 0) as \$x | (\$b[0].$3 // 0) as \$y | if \$y == 0 or \$x == 0 then null else \$x / \$y end"
}

# fmt2 <number|null>
fmt2() { if [[ $1 == null ]]; then echo "n/a"; else printf %.2f "$1"; fi; }

# verdict <value|null> <comparison> [<value|null> <comparison>]...: met
# when every value passes its comparison; n/a when any value is null.
verdict() {
	local ok=true
	while (($# >= 2)); do
		if [[ $1 == null ]]; then
			echo "n/a (too short to measure)"
			return
		fi
		[[ $(jq -n "$1 $2") == true ]] || ok=false
		shift 2
	done
	if [[ $ok == true ]]; then echo "**met**"; else echo "**not met**"; fi
}

write_markdown() {
	local outfile=$1
	shift
	local curve=("$@")
	local cpu model gov
	cpu=$(nproc)
	model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
	gov=$("$GO" version)
	local idle_o="$OUT/idle-orchard.json" idle_n="$OUT/idle-nanomdm.json"
	local rt_o="$OUT/roundtrip-orchard.json" rt_n="$OUT/roundtrip-nanomdm.json"
	local fresh_o="$OUT/idle-fresh-orchard.json" fresh_n="$OUT/idle-fresh-nanomdm.json"
	local cpu_ratio cps_ratio fcpu_ratio fcps_ratio
	cpu_ratio=$(jratio "$idle_o" "$idle_n" cpu_per_connect_ms)
	cps_ratio=$(jratio "$idle_o" "$idle_n" connects_per_s)
	fcpu_ratio=$(jratio "$fresh_o" "$fresh_n" cpu_per_connect_ms)
	fcps_ratio=$(jratio "$fresh_o" "$fresh_n" connects_per_s)
	local first="${curve[0]}" last_plain="${curve[-1]}"
	[[ -f "$OUT/curve-backlog.json" && ${#curve[@]} -gt 1 ]] && last_plain="${curve[-2]}"
	local flat_cpu flat_p50 flat_backlog
	flat_cpu=$(jratio "$last_plain" "$first" cpu_per_connect_ms)
	flat_p50=$(jratio "$last_plain" "$first" p50_ms)
	flat_backlog=none
	[[ -f "$OUT/curve-backlog.json" ]] && flat_backlog=$(jratio "$OUT/curve-backlog.json" "$last_plain" cpu_per_connect_ms)

	{
		echo "# Benchmarks"
		echo
		echo "Written by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d). Each figure comes from $REPEAT runs on fresh server"
		echo "starts (Orchard and NanoMDM alternating); tables show the run with the median connects/s and list every run,"
		echo "because a shared 2-core machine is noisy: expect ±20% between runs."
		echo
		echo "## Machine"
		echo
		echo "- CPU: $model, $cpu cores (nproc)"
		echo "- $gov"
		echo "- NanoMDM $NANOMDM_VERSION (filekv storage) with micromdm scepserver $SCEPSERVER_VERSION as its CA"
		echo
		echo "## Method"
		echo
		echo "- Both servers serve **plain HTTP on loopback** (\`orchard serve --plain-http=true\`, NanoMDM's own HTTP listener),"
		echo "  so TLS is not part of the comparison. Devices sign every message (Mdm-Signature, CMS with their SCEP identity);"
		echo "  both servers verify the signature and the issuing CA on every request."
		echo "- The load generator (\`orchard-load\`) runs on the same machine and competes for the same $cpu cores (its CPU per"
		echo "  connect is the \"load generator\" row): connects/s <= $cpu / (server + generator CPU per connect). To leave the"
		echo "  cores to the servers, each device signs its Idle report once and resends it (\`--sign-idle-once\`, default);"
		echo "  command answers are signed fresh. Both servers still parse and verify the CMS signature and the certificate"
		echo "  chain on every request, so server work is unchanged; neither server rejects a resent Idle report."
		echo "  Server CPU is the server process's utime+stime from /proc over the measured phase only (enrollment excluded);"
		echo "  NanoMDM's figure excludes scepserver, which is idle during that phase. Peak RSS is VmHWM."
		echo "- Durability: Orchard answers 200 only after its bbolt transaction is committed and fsynced (group commit)."
		echo "  NanoMDM's filekv backend (peterbourgon/diskv via nanolib kvdiskv) writes files **without fsync**, so an answered"
		echo "  NanoMDM write may be lost on power failure. The comparison is therefore durable Orchard vs non-durable NanoMDM."
		echo "- Devices: each simulated device has its own RSA-2048 key (generated up front, cached in .bench/keys), enrolls"
		echo "  through SCEP (Orchard: one freshly fetched signed enrollment profile per device, its single-use challenge; NanoMDM:"
		echo "  scepserver's static challenge), then Authenticate and TokenUpdate. A *connect* is one PUT to the MDM ServerURL:"
		echo "  Idle, or the answer to the command the previous connect returned (DeviceInformation gets QueryResponses)."
		echo
		echo "## Targets"
		echo
		echo "| target | measured | verdict |"
		echo "|---|---|---|"
		echo "| server CPU per idle connect at most half of NanoMDM's | Orchard/NanoMDM = $(fmt2 "$cpu_ratio") | $(verdict "$cpu_ratio" "<= 0.5") |"
		echo "| connects/s at least 1.5x NanoMDM's, every answered write durable | Orchard/NanoMDM = $(fmt2 "$cps_ratio") (Orchard fsyncs, NanoMDM does not) | $(verdict "$cps_ratio" ">= 1.5") |"
		echo "| same, every Idle signed fresh (generator-bound, see below) | CPU/connect Orchard/NanoMDM = $(fmt2 "$fcpu_ratio") | $(verdict "$fcpu_ratio" "<= 0.5") |"
		echo "| same, every Idle signed fresh (generator-bound, see below) | connects/s Orchard/NanoMDM = $(fmt2 "$fcps_ratio") | $(verdict "$fcps_ratio" ">= 1.5") |"
		echo "| flat cost from $(jqf "$first" .label) to $(jqf "$last_plain" .label) devices (CPU/connect and p50 within 1.5x) | CPU/connect x$(fmt2 "$flat_cpu"), p50 x$(fmt2 "$flat_p50") | $(verdict "$flat_cpu" "<= 1.5" "$flat_p50" "<= 1.5") |"
		if [[ $flat_backlog != none ]]; then
			echo "| flat cost with a $BACKLOG-command backlog on one device (CPU/connect within 1.5x) | CPU/connect x$(fmt2 "$flat_backlog") | $(verdict "$flat_backlog" "<= 1.5") |"
		fi
		echo
		echo "## Idle connects ($DEVICES devices x $CONNECTS connects, $CONCURRENCY concurrent)"
		echo
		"$BIN/orchard-load" report compare "$idle_o" "$idle_n"
		echo
		echo "Every run (median shown above): Orchard $(runs_line "$OUT/idle-orchard"); NanoMDM $(runs_line "$OUT/idle-nanomdm")."
		echo
		echo "## Idle connects, every Idle signed fresh (\`--sign-idle-once=false\`; otherwise as above)"
		echo
		echo "Here the generator signs every request (RSA-2048) on the same $cpu cores; compare its CPU per connect with the"
		echo "servers': when it is several times theirs, connects/s measures mostly the generator, and per-connect server CPU"
		echo "includes more scheduler wake-ups at the lower request rate."
		echo
		"$BIN/orchard-load" report compare "$fresh_o" "$fresh_n"
		echo
		echo "Every run (median shown above): Orchard $(runs_line "$OUT/idle-fresh-orchard"); NanoMDM $(runs_line "$OUT/idle-fresh-nanomdm")."
		echo
		echo "## Command round trip (DeviceInformation queued for all $DEVICES devices, each connects until its queue is empty, $CONCURRENCY concurrent)"
		echo
		"$BIN/orchard-load" report compare "$rt_o" "$rt_n"
		echo
		echo "Every run (median shown above): Orchard $(runs_line "$OUT/roundtrip-orchard"); NanoMDM $(runs_line "$OUT/roundtrip-nanomdm")."
		echo
		echo "## Cost curve (Orchard only)"
		echo
		echo "Idle connects of $DEVICES freshly enrolled devices x $CONNECTS connects ($CONCURRENCY concurrent) with N devices"
		echo "already in the store (seeded offline by \`orchard-load seed\`: enrollments bound to certificates issued by the"
		echo "data dir's CA, written in group-committed batches before the server starts). The last row adds $BACKLOG"
		echo "DeviceInformation commands queued on one extra device, which takes part in the connects and answers them"
		echo "(each repeated run adds its own backlogged device, so later runs have up to $REPEAT such queues in the store)."
		echo
		"$BIN/orchard-load" report curve "${curve[@]}"
		echo
		local c
		for c in "${curve[@]}"; do
			echo "- $(jqf "$c" .label), every run: $(runs_line "${c%.json}")"
		done
		echo
		if [[ -f "$OUT/seed.txt" ]]; then
			echo "Seeding: $(paste -sd';' "$OUT/seed.txt" | sed 's/;/; /g')."
			echo
		fi
		echo "## Enrollment ($DEVICES devices through profile + SCEP + Authenticate + TokenUpdate, Orchard, $CONCURRENCY concurrent)"
		echo
		echo "| run | wall (s) | server CPU (s) | devices/s |"
		echo "|---|---:|---:|---:|"
		jq -r '"| \(.label) | \(.enroll.wall_s*100|round/100) | \(.enroll.server_cpu_s) | \(.devices / .enroll.wall_s * 10 | round / 10) |"' "$OUT/enroll-orchard.json"
		jq -r '"| NanoMDM (enroll phase of the idle run; CPU excludes scepserver, which signs the certificates) | \(.enroll.wall_s*100|round/100) | \(.enroll.server_cpu_s) | \(.devices / .enroll.wall_s * 10 | round / 10) |"' "$idle_n"
		echo
		echo "## Commands"
		echo
		echo "\`make bench\` runs \`bench/run.sh\`, which ran (data dirs under .bench/run, JSON reports under .bench/out):"
		echo
		echo '```'
		sed "s#$ROOT/##g" "$OUT/commands.txt"
		echo '```'
		echo
		echo "Servers: \`orchard serve --data <dir> --listen $ORCHARD_ADDR --public-url https://$ORCHARD_ADDR --plain-http=true --log-level warn\`;"
		echo "\`scepserver ca -init -depot <dir>/depot -keySize 2048\`, \`scepserver -depot <dir>/depot -http-addr $SCEP_ADDR -challenge <challenge>\`,"
		echo "\`nanomdm -ca <dir>/depot/ca.pem -api <key> -listen $NANO_ADDR -storage filekv -storage-dsn <dir>/db -checkin\`."
		echo "Each scenario starts its servers on fresh data dirs; all runs use the same device count, concurrency and connects."
	} >"$outfile"
}
