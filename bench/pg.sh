# PostgreSQL and replicas part of `make bench` (issue #16), sourced by
# bench/run.sh after lib.sh: bbolt against PostgreSQL on one replica, then
# PostgreSQL with two replicas (the generator spreads the devices over
# both), all on plain HTTP h1 as behind a TLS-terminating proxy, with the
# cost curve's seeded store (100,000 devices by default) in the database;
# then the round trip again while one replica is SIGKILLed and restarted.
# Each configuration runs once (PG_REPEAT) to stay within a few minutes.

PG_PORT=${PG_PORT:-15432}
PG_REPEAT=${PG_REPEAT:-1}
REPLICA_B_ADDR=127.0.0.1:18444
PG_DIR="$RUN/pg"

# start_postgres: a throwaway PostgreSQL (Debian's package) in $PG_DIR on
# $PG_PORT, as nobody when run as root, fsync on. Sets PG_PID, PG_DSN.
start_postgres() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	if [[ -n ${ORCHARD_PG_BIN:-} ]]; then bin=$ORCHARD_PG_BIN; fi
	if [[ ! -x $bin/initdb ]]; then
		echo "PostgreSQL binaries not found: run scripts/ensure-postgres.sh (or set ORCHARD_PG_BIN)" >&2
		return 1
	fi
	PG_BIN=$bin
	PG_VERSION=$("$bin/postgres" --version | awk '{print $3}')
	PG_AS=()
	mkdir -p "$PG_DIR"
	if [[ $(id -u) == 0 ]]; then
		chown nobody "$PG_DIR"
		PG_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	fi
	"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log"
	"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -s \
		-o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR -c max_connections=200" start
	trap 'cleanup; stop_postgres' EXIT
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
	PG_DSN="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
}

stop_postgres() {
	[[ -n ${PG_BIN:-} ]] || return 0
	"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -s stop || true
	PG_BIN=
}

# keys_only <from> <to>: a replica's data dir: the keys, not the bbolt file.
keys_only() {
	mkdir -p "$2"
	find "$1" -maxdepth 1 -type f ! -name 'orchard.db*' ! -name '*.log' -exec cp -p {} "$2/" \;
}

# start_pg_replica <data> <addr>: `orchard serve` on the database, plain
# HTTP. Sets REPLICA_PID and REPLICA_CMD (a sh command line that starts it
# again, for --restart-cmd).
start_pg_replica() {
	local data=$1 addr=$2
	local cmd=("$BIN/orchard" serve --data "$data" --listen "$addr" --public-url "https://$addr" --plain-http
		--storage postgres --storage-dsn "$PG_DSN" --apns-url https://127.0.0.1:9 --log-level warn)
	"${cmd[@]}" >>"$data.log" 2>&1 &
	REPLICA_PID=$!
	STARTED+=("$REPLICA_PID")
	REPLICA_CMD="$(printf '%q ' "${cmd[@]}")>>$(printf %q "$data.log") 2>&1"
	wait_url "http://$addr/healthz" "$REPLICA_PID"
}

PG_FIRST=2000000 # device indices of these runs, apart from the curve's

# pg_load <name> <label> <pid> [flags...]: one run against ORCHARD_ADDR on
# plain HTTP h1 with fresh devices; reports go to $OUT/pg-<name>-<r>.json.
pg_load() {
	local name=$1 label=$2 pid=$3 r
	shift 3
	for r in $(seq 1 "$PG_REPEAT"); do
		echo "== postgres: $label ($r/$PG_REPEAT)"
		orchard_load "$OUT/pg-$name-$r.json" "$label" "$PG_DATA_A" "$pid" plain --conn h1 --first "$PG_FIRST" "$@"
		PG_FIRST=$((PG_FIRST + DEVICES + 1))
	done
	pick_median "$OUT/pg-$name.json" "$OUT/pg-$name-"[0-9]*.json
}

# pg_bench <bbolt data dir holding the seeded store> <devices seeded>
pg_bench() {
	local seeded=$1 count=$2
	PG_SEEDED=$count
	start_postgres
	echo "== postgres: copy the $count-device store into PostgreSQL (orchard migrate)"
	logcmd "$BIN/orchard" migrate --from "bolt:$seeded/orchard.db" --to "postgres:<dsn>"
	local t0=$SECONDS
	"$BIN/orchard" migrate --from "bolt:$seeded/orchard.db" --to "postgres:$PG_DSN" >"$OUT/pg-migrate.txt"
	PG_MIGRATE_S=$((SECONDS - t0))

	# bbolt, one server, on the same store and the same load.
	PG_DATA_A=$seeded
	start_orchard "$seeded" plain
	pg_load bolt-idle "bbolt, 1 server" "$ORCHARD_PID" --scenario idle
	pg_load bolt-roundtrip "bbolt, 1 server" "$ORCHARD_PID" --scenario roundtrip
	stop_pid "$ORCHARD_PID"

	local a="$RUN/pg-a" b="$RUN/pg-b"
	keys_only "$seeded" "$a"
	keys_only "$seeded" "$b"
	PG_DATA_A=$a
	start_pg_replica "$a" "$ORCHARD_ADDR"
	local pa=$REPLICA_PID
	pg_load pg1-idle "PostgreSQL, 1 replica" "$pa" --db-pid "$PG_PID" --scenario idle
	pg_load pg1-roundtrip "PostgreSQL, 1 replica" "$pa" --db-pid "$PG_PID" --scenario roundtrip

	start_pg_replica "$b" "$REPLICA_B_ADDR"
	local pb=$REPLICA_PID restart=$REPLICA_CMD
	local two=(--pids "$pb" --db-pid "$PG_PID" --replicas "http://$ORCHARD_ADDR,http://$REPLICA_B_ADDR")
	pg_load pg2-idle "PostgreSQL, 2 replicas" "$pa" "${two[@]}" --scenario idle
	pg_load pg2-roundtrip "PostgreSQL, 2 replicas" "$pa" "${two[@]}" --scenario roundtrip

	# The same round trip, 5 commands per device, while replica B is
	# SIGKILLed a third of the way in and started again (orchard-load stops
	# the restarted one at the end).
	echo "== postgres: 2 replicas, one SIGKILLed and restarted mid-load"
	orchard_load "$OUT/pg-kill.json" "PostgreSQL, 2 replicas, one killed and restarted" "$a" "$pa" plain --conn h1 \
		--first "$PG_FIRST" --scenario roundtrip --commands 5 --db-pid "$PG_PID" \
		--replicas "http://$ORCHARD_ADDR,http://$REPLICA_B_ADDR" --kill-pid "$pb" --kill-replica 1 --kill-at 0.3 \
		--restart-cmd "$restart"
	PG_FIRST=$((PG_FIRST + DEVICES + 1))
	wait "$pb" 2>/dev/null || true
	stop_pid "$pa"
	stop_postgres
}

# write_pg_markdown: the section of BENCHMARKS.md for these runs.
write_pg_markdown() {
	local row='"| \(.label) | \(.connects_per_s*10|round/10) | \(.cpu_per_connect_ms // 0 | .*1000|round/1000) | \(.db_cpu_per_connect_ms // null | if . == null then "-" else (.*1000|round/1000) end) | \((.cpu_per_connect_ms // 0) + (.db_cpu_per_connect_ms // 0) | .*1000|round/1000) | \(.p50_ms) | \(.p99_ms) | \(.error_count) |"'
	local rt='"| \(.label) | \(.commands_answered) | \(.cpu_per_command_ms // 0 | .*1000|round/1000) | \(if .commands_answered > 0 and .load.db_cpu_s != null then (.load.db_cpu_s * 1000 / .commands_answered | .*1000|round/1000) else "-" end) | \(.p50_ms) | \(.p99_ms) | \(.error_count) |"'
	echo
	echo "## PostgreSQL and replicas (issue #16)"
	echo
	echo "Plain HTTP h1 (as behind a TLS-terminating proxy), every message signed afresh, $DEVICES fresh devices per run"
	echo "with $PG_SEEDED seeded devices already in the store (the cost curve's bbolt store, copied into PostgreSQL by"
	echo "\`orchard migrate\` in ${PG_MIGRATE_S} s: $(awk 'NR > 1 && $2 ~ /^[0-9]+$/ { n += $2; t++ } END { print n " records in " t " tables, counts verified" }' "$OUT/pg-migrate.txt")). PostgreSQL $PG_VERSION"
	echo "runs on the same machine (stock settings, fsync on); its CPU is its postmaster's and backends' (\`--db-pid\`)."
	echo "With two replicas the generator sends device i to replica i mod 2 and the server CPU is both replicas' sum."
	echo "Each configuration ran $PG_REPEAT time(s)."
	echo
	echo "### Idle connects ($DEVICES devices x $CONNECTS connects, $CONCURRENCY concurrent)"
	echo
	echo "| configuration | connects/s | Orchard CPU per connect (ms) | PostgreSQL CPU per connect (ms) | total CPU per connect (ms) | p50 (ms) | p99 (ms) | errors |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	local n
	for n in bolt pg1 pg2; do jq -r "$row" "$OUT/pg-$n-idle.json"; done
	echo
	echo "### Command round trip (DeviceInformation for each of $DEVICES devices, answered and stored)"
	echo
	echo "| configuration | commands answered | Orchard CPU per command (ms) | PostgreSQL CPU per command (ms) | p50 (ms) | p99 (ms) | errors |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for n in bolt pg1 pg2; do jq -r "$rt" "$OUT/pg-$n-roundtrip.json"; done
	echo
	echo "### One replica SIGKILLed and restarted mid-load"
	echo
	echo "Two replicas, $DEVICES devices with 5 DeviceInformation commands each; replica B is SIGKILLed after 30% of the"
	echo "expected requests and started again at once; devices whose replica stops answering move to the other one,"
	echo "as behind a health-checking load balancer. Afterwards every queued command target is read back through the API."
	echo
	echo "| requests ok | errors seen by devices | killed after | restarted, answering after | targets queued | acknowledged once | lost | stored twice | offered again |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
	jq -r '"| \(.requests) | \(.error_count) \(.errors | to_entries | map("\(.key) \(.value)") | join(", ") | if . == "" then "" else "(\(.))" end) | \(.kill.after_requests) requests | \(.kill.restart_s // 0 | .*100|round/100) s | \(.delivery.queued) | \(.delivery.acknowledged) | **\(.delivery.lost)** | \(.delivery.stored_twice) | \(.delivery.offered_again) |"' "$OUT/pg-kill.json"
}
