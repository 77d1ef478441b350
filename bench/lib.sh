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

# wait_url <url> <pid> [curl options...]: until the URL answers (any
# status) or the process dies.
wait_url() {
	local url=$1 pid=$2
	shift 2
	for _ in $(seq 1 300); do
		if curl -s -o /dev/null "$@" "$url"; then
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

# start_orchard <data-dir> [plain|tls]: sets ORCHARD_PID (and APNS_PID, the
# fake APNs it pushes to). With tls Orchard serves its own TLS with the
# self-signed pair it makes in the data dir.
start_orchard() {
	local data=$1 transport=${2:-plain}
	mkdir -p "$data"
	local plain=true health=("http://$ORCHARD_ADDR/healthz")
	if [[ $transport == tls ]]; then
		plain=false health=("https://$ORCHARD_ADDR/healthz" --cacert "$data/tls.pem")
	fi
	# Enrollment needs a push certificate: a self-made one, and a fake APNs
	# on loopback that trusts it (its own process, so its CPU is not the
	# server's), so every push the server makes succeeds as with Apple and
	# none leaves the machine. A closed port instead would make each queued
	# command's push fail and retry inside the measured server.
	[[ -f "$data/bench-push.pem" ]] || "$BIN/orchard-load" push-cert "$data" >/dev/null
	rm -f "$data/fake-apns.url"
	"$BIN/orchard-load" fake-apns "$data" >>"$data.apns.log" 2>&1 &
	APNS_PID=$!
	STARTED+=("$APNS_PID")
	for _ in $(seq 1 100); do
		[[ -f "$data/fake-apns.url" ]] && break
		kill -0 "$APNS_PID" 2>/dev/null || { echo "fake APNs exited; see $data.apns.log" >&2; return 1; }
		sleep 0.1
	done
	"$BIN/orchard" serve --data "$data" --listen "$ORCHARD_ADDR" --public-url "https://$ORCHARD_ADDR" \
		--plain-http="$plain" --apns-url "$(cat "$data/fake-apns.url")" --apns-ca "$data/fake-apns-ca.pem" \
		--log-level warn >>"$data.log" 2>&1 &
	ORCHARD_PID=$!
	STARTED+=("$ORCHARD_PID")
	wait_url "${health[0]}" "$ORCHARD_PID" "${health[@]:1}"
	local scheme=http
	[[ $transport == tls ]] && scheme=https
	if ! "$BIN/orchard" push-cert show --data "$data" --server "$scheme://$ORCHARD_ADDR" >/dev/null 2>&1; then
		"$BIN/orchard" push-cert upload --data "$data" --server "$scheme://$ORCHARD_ADDR" \
			--cert "$data/bench-push.pem" --key "$data/bench-push.key" >/dev/null
	fi
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

# jdiv <a.json> <a.field> <b.json> <b.field>: a.field / b.field, or null
# when either is 0.
jdiv() {
	jq -n --slurpfile a "$1" --slurpfile b "$3" "(\$a[0].$2 // 0) as \$x | (\$b[0].$4 // 0) as \$y | if \$y == 0 or \$x == 0 then null else \$x / \$y end"
}

# jval <file> <field>: the field, or null when it is 0 or missing.
jval() { jq -r "(.$2 // 0) | if . == 0 then null else . end" "$1"; }

# fmt3 <number|null>
fmt3() { if [[ $1 == null ]]; then echo "n/a"; else printf %.3f "$1"; fi; }

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

# The configurations of the comparison tables, in column order.
CONFIGS=(orchard-plain orchard-tls-h1 orchard-tls-h2 orchard-tls-wake nanomdm)

# compare_table <scenario>: the Markdown table of one scenario, every
# configuration, and where every run landed.
compare_table() {
	local sc=$1 files=() name
	for name in "${CONFIGS[@]}"; do files+=("$OUT/$sc-$name.json"); done
	"$BIN/orchard-load" report compare "${files[@]}"
	echo
	echo "Every run (median shown above):"
	echo
	for name in "${CONFIGS[@]}"; do
		echo "- $(jqf "$OUT/$sc-$name.json" .label): $(runs_line "$OUT/$sc-$name")"
	done
}

write_markdown() {
	local outfile=$1
	shift
	local curve=("$@")
	local cpu model gov
	cpu=$(nproc)
	model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
	gov=$("$GO" version)
	local i_plain="$OUT/idle-orchard-plain.json" i_h1="$OUT/idle-orchard-tls-h1.json" i_h2="$OUT/idle-orchard-tls-h2.json"
	local i_wake="$OUT/idle-orchard-tls-wake.json" i_nano="$OUT/idle-nanomdm.json"
	local r_h1="$OUT/roundtrip-orchard-tls-h1.json" r_h2="$OUT/roundtrip-orchard-tls-h2.json" r_wake="$OUT/roundtrip-orchard-tls-wake.json"
	local o_plain="$OUT/idle-once-orchard-plain.json" o_nano="$OUT/idle-once-nanomdm.json"

	local h1_cpu h2_cpu wake_cpu wake_res rt_h1 rt_h2 rt_wake
	h1_cpu=$(jval "$i_h1" cpu_per_connect_ms)
	h2_cpu=$(jval "$i_h2" cpu_per_connect_ms)
	wake_cpu=$(jval "$i_wake" cpu_per_wake_ms)
	wake_res=$(jq -r .tls_resumed_pct "$i_wake")
	rt_h1=$(jdiv "$r_h1" cpu_per_command_ms "$i_h1" cpu_per_connect_ms)
	rt_h2=$(jdiv "$r_h2" cpu_per_command_ms "$i_h2" cpu_per_connect_ms)
	rt_wake=$(jdiv "$r_wake" cpu_per_command_ms "$i_wake" cpu_per_wake_ms)

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
		echo "Written by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d) in $SECONDS s. Each figure comes from $REPEAT runs on"
		echo "fresh server starts (in each round every configuration runs once, in turn, so drift on a shared machine hits"
		echo "all alike); tables show the run with the median connects/s and list every run, because a shared $cpu-core"
		echo "machine is noisy: expect ±20% between runs."
		echo
		echo "## Machine"
		echo
		echo "- CPU: $model, $cpu cores (nproc)"
		echo "- $gov"
		echo "- NanoMDM $NANOMDM_VERSION (filekv storage) with micromdm scepserver $SCEPSERVER_VERSION as its CA"
		echo
		echo "## Method"
		echo
		echo "- **Orchard on TLS** serves its own TLS (\`orchard serve --plain-http=false\`) with the self-signed ECDSA P-256"
		echo "  certificate it generates in its data dir; the load generator trusts it from the root payload"
		echo "  (com.apple.security.root) of the enrollment profile, as a device does. Three connection modes (\`--conn\`):"
		echo "  **h1**, one keep-alive HTTP/1.1 connection per device; **h2**, one HTTP/2 connection per device; **wake**, every"
		echo "  wake opens a new TLS connection, resuming the TLS session the device's own session cache holds (as devices"
		echo "  do), sends Idle, answers what it gets and closes (the device offers h2 and http/1.1; Orchard picks h2). In"
		echo "  h1 and h2 each device opens its connection (resumed from enrollment) just before the measured phase, which so"
		echo "  measures keep-alive connects in both scenarios; the resumed handshake's cost is the wake mode's figure. Server"
		echo "  pushes for what was queued before the measured phase (the round trip's commands) are let finish before it;"
		echo "  the round trip runs $ROUNDS rounds of queue, let the pushes finish, drain, and measures only the drains."
		echo "  Devices present no TLS client certificate, so Orchard verifies the Mdm-Signature on every request."
		echo "- **Orchard on plain HTTP** (\`--plain-http=true\`, h1) is shown for reference: the TLS cost is the difference."
		echo "- **NanoMDM stays on plain HTTP** (its own listener, as in earlier runs; it would need a TLS proxy in front),"
		echo "  with the same h1 mode: one keep-alive connection per device. Its comparison with Orchard on TLS therefore"
		echo "  charges TLS to Orchard only."
		echo "- **Every message is signed afresh** (Mdm-Signature, CMS with the device's SCEP identity, RSA-2048), as devices"
		echo "  do; both servers verify the signature and the issuing CA on every request. The generator runs on the same"
		echo "  $cpu cores and its signing costs several times the servers' work (the \"load generator CPU\" rows), so"
		echo "  connects/s <= $cpu / (server + generator CPU per connect) measures the generator as much as the server."
		echo "  The older sign-once mode (each device signs its Idle once and resends it, \`--sign-idle-once\`; the servers"
		echo "  still verify it every time) is kept as a labelled reference table below."
		echo "- Server CPU is the server process's utime+stime from /proc over the measured phase only (enrollment"
		echo "  excluded); NanoMDM's figure excludes scepserver, which is idle during that phase. Peak RSS is VmHWM."
		echo "  TLS handshakes are counted by the generator for the measured phase's connections, with the share it resumed."
		echo "- Pushes: Orchard has a self-made push certificate (\`orchard-load push-cert\`) and pushes to a fake APNs on loopback"
		echo "  (\`orchard-load fake-apns\`, apns/apnstest in a process of its own, not counted as server CPU) that answers 200, as"
		echo "  Apple does; NanoMDM has no push certificate and pushes nothing."
		echo "- Durability: Orchard answers 200 only after its bbolt transaction is committed and fsynced (group commit)."
		echo "  NanoMDM's filekv backend (peterbourgon/diskv via nanolib kvdiskv) writes files **without fsync**, so an answered"
		echo "  NanoMDM write may be lost on power failure. The comparison is therefore durable Orchard vs non-durable NanoMDM."
		echo "- Devices: each simulated device has its own RSA-2048 key (generated up front, cached in .bench/keys), enrolls"
		echo "  through SCEP (Orchard: one freshly fetched signed enrollment profile per device, its single-use challenge; NanoMDM:"
		echo "  scepserver's static challenge), then Authenticate and TokenUpdate. A *connect* is one PUT to the MDM ServerURL:"
		echo "  Idle, or the answer to the command the previous connect returned (DeviceInformation gets QueryResponses)."
		echo "  A *command round trip* is Idle -> DeviceInformation -> its result stored durably: server CPU per command"
		echo "  answered in the round-trip scenario (both of its requests)."
		echo
		echo "## Targets (issue #17: Orchard on TLS, every message signed afresh)"
		echo
		echo "| target | measured | verdict |"
		echo "|---|---|---|"
		echo "| idle connect on TLS keep-alive, HTTP/1.1: at most 0.120 ms server CPU | $(fmt3 "$h1_cpu") ms | $(verdict "$h1_cpu" "<= 0.120") |"
		echo "| idle connect on TLS keep-alive, HTTP/2: at most 0.120 ms server CPU | $(fmt3 "$h2_cpu") ms | $(verdict "$h2_cpu" "<= 0.120") |"
		echo "| wake with a resumed TLS handshake: at most 0.250 ms server CPU per wake | $(fmt3 "$wake_cpu") ms, ${wake_res}% of handshakes resumed | $(verdict "$wake_cpu" "<= 0.250" "$wake_res" ">= 99") |"
		echo "| command round trip at most 2x the idle connect (TLS h1) | $(fmt3 "$(jval "$r_h1" cpu_per_command_ms)") ms = x$(fmt2 "$rt_h1") | $(verdict "$rt_h1" "<= 2") |"
		echo "| command round trip at most 2x the idle connect (TLS h2) | $(fmt3 "$(jval "$r_h2" cpu_per_command_ms)") ms = x$(fmt2 "$rt_h2") | $(verdict "$rt_h2" "<= 2") |"
		echo "| command round trip at most 2x the idle wake (TLS wake: one wake carries Idle and the result) | $(fmt3 "$(jval "$r_wake" cpu_per_command_ms)") ms = x$(fmt2 "$rt_wake") | $(verdict "$rt_wake" "<= 2") |"
		echo "| flat cost from $(jqf "$first" .label) to $(jqf "$last_plain" .label) devices, TLS h1 (CPU/connect and p50 within 1.5x) | CPU/connect x$(fmt2 "$flat_cpu"), p50 x$(fmt2 "$flat_p50") | $(verdict "$flat_cpu" "<= 1.5" "$flat_p50" "<= 1.5") |"
		if [[ $flat_backlog != none ]]; then
			echo "| flat cost with a $BACKLOG-command backlog on one device, TLS h1 (CPU/connect within 1.5x) | CPU/connect x$(fmt2 "$flat_backlog") | $(verdict "$flat_backlog" "<= 1.5") |"
		fi
		if [[ -s ${FANOUT_OUT:-} ]]; then
			write_fanout_targets # bench/fanout.sh; its method is in its own section below
		fi
		echo
		echo "Every signature is verified (no client certificates; Orchard checks Mdm-Signature on every request) and"
		echo "every answered write is durable (fsync on) in all of these runs."
		echo
		echo "### Against NanoMDM (earlier targets: server CPU per idle connect at most half, connects/s at least 1.5x)"
		echo
		echo "| Orchard run (idle connects) vs NanoMDM plain h1 | CPU/connect ratio | verdict | connects/s ratio | verdict |"
		echo "|---|---:|---|---:|---|"
		local f label cr pr
		for f in "$i_plain" "$i_h1" "$i_h2" "$i_wake"; do
			cr=$(jratio "$f" "$i_nano" cpu_per_connect_ms)
			pr=$(jratio "$f" "$i_nano" connects_per_s)
			echo "| $(jqf "$f" .label), signed afresh | $(fmt2 "$cr") | $(verdict "$cr" "<= 0.5") | $(fmt2 "$pr") | $(verdict "$pr" ">= 1.5") |"
		done
		cr=$(jratio "$o_plain" "$o_nano" cpu_per_connect_ms)
		pr=$(jratio "$o_plain" "$o_nano" connects_per_s)
		echo "| $(jqf "$o_plain" .label), Idle signed once (\`--sign-idle-once\`, both servers alike) | $(fmt2 "$cr") | $(verdict "$cr" "<= 0.5") | $(fmt2 "$pr") | $(verdict "$pr" ">= 1.5") |"
		echo
		echo "TLS cost on Orchard (server CPU per idle connect, TLS / plain HTTP): h1 x$(fmt2 "$(jratio "$i_h1" "$i_plain" cpu_per_connect_ms)"),"
		echo "h2 x$(fmt2 "$(jratio "$i_h2" "$i_plain" cpu_per_connect_ms)"), wake x$(fmt2 "$(jratio "$i_wake" "$i_plain" cpu_per_connect_ms)")."
		echo
		echo "## Idle connects ($DEVICES devices x $CONNECTS connects, $CONCURRENCY concurrent; wake: $CONNECTS wakes per device)"
		echo
		compare_table idle
		echo
		echo "## Command round trip (DeviceInformation queued for all $DEVICES devices, each connects until its queue is empty, $CONCURRENCY concurrent; $ROUNDS rounds)"
		echo
		echo "In wake mode each device's one wake carries both requests (Idle, then the result) on one connection."
		echo
		compare_table roundtrip
		echo
		echo "## Idle connects, Idle signed once per device (\`--sign-idle-once\`; reference for earlier figures)"
		echo
		echo "Each device signs its Idle report once and resends it; both servers still verify it on every request. The"
		echo "generator's CPU per connect drops, so more of the cores go to the servers."
		echo
		"$BIN/orchard-load" report compare "$o_plain" "$o_nano"
		echo
		echo "Every run (median shown above): $(jqf "$o_plain" .label) $(runs_line "$OUT/idle-once-orchard-plain"); $(jqf "$o_nano" .label) $(runs_line "$OUT/idle-once-nanomdm")."
		echo
		echo "## Cost curve (Orchard on TLS, h1, every message signed afresh)"
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
		echo "## Enrollment ($DEVICES devices through profile + SCEP + Authenticate + TokenUpdate, $CONCURRENCY concurrent)"
		echo
		echo "| run | wall (s) | server CPU (s) | devices/s |"
		echo "|---|---:|---:|---:|"
		jq -r '"| \(.label) (enroll-only run) | \(.enroll.wall_s*100|round/100) | \(.enroll.server_cpu_s) | \(.devices / .enroll.wall_s * 10 | round / 10) |"' "$OUT/enroll-orchard.json"
		jq -r '"| \(.label) (enroll phase of the idle run; CPU excludes scepserver, which signs the certificates) | \(.enroll.wall_s*100|round/100) | \(.enroll.server_cpu_s) | \(.devices / .enroll.wall_s * 10 | round / 10) |"' "$i_nano"
		echo
		echo "## Commands"
		echo
		echo "\`make bench\` runs \`bench/run.sh\`, which ran (data dirs under .bench/run, JSON reports under .bench/out):"
		echo
		echo '```'
		sed "s#$ROOT/##g" "$OUT/commands.txt"
		echo '```'
		echo
		echo "Servers: \`orchard serve --data <dir> --listen $ORCHARD_ADDR --public-url https://$ORCHARD_ADDR --plain-http=<false on TLS, true on plain HTTP> --apns-url <fake APNs> --apns-ca <dir>/fake-apns-ca.pem --log-level warn\`;"
		echo "\`scepserver ca -init -depot <dir>/depot -keySize 2048\`, \`scepserver -depot <dir>/depot -http-addr $SCEP_ADDR -challenge <challenge>\`,"
		echo "\`nanomdm -ca <dir>/depot/ca.pem -api <key> -listen $NANO_ADDR -storage filekv -storage-dsn <dir>/db -checkin\`."
		echo "Each run starts its server on a fresh data dir (the cost curve reuses one); all runs use the same device count,"
		echo "concurrency and connects."
	} >"$outfile"
}
