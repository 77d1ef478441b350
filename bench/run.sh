#!/usr/bin/env bash
# Side-by-side load benchmark of Orchard (on its own TLS in every
# connection mode, and on plain HTTP) and NanoMDM (plain HTTP) on loopback,
# then Orchard's cost curve, PostgreSQL, and fan-out and memory at 100,000
# devices; writes BENCHMARKS.md. Called by `make bench`.
# Everything it builds or stores goes under .bench/ (gitignored).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh
source bench/pg.sh

# BENCH_SMALL=1: a quick run of every part (20 devices, a 1,000-device
# store, one run each) to check the script; its figures mean little.
# BENCH_ONLY=pg: only the PostgreSQL and replicas part, on a store seeded
# here, written to .bench/out/postgres.md unless OUTFILE says otherwise.
# BENCH_ONLY=fanout: only the fan-out and memory part (bench/fanout.sh),
# written to .bench/out/fanout.md unless OUTFILE_FANOUT says otherwise.
if [[ ${BENCH_SMALL:-} == 1 ]]; then
	DEVICES=${DEVICES:-20} CONNECTS=${CONNECTS:-5} CURVE=${CURVE:-1000} BACKLOG=${BACKLOG:-0} REPEAT=${REPEAT:-1} ROUNDS=${ROUNDS:-1}
	FANOUT_DEVICES=${FANOUT_DEVICES:-2000} FANOUT_CONNECT=${FANOUT_CONNECT:-200}
fi
source bench/fanout.sh # after BENCH_SMALL: it reads FANOUT_* once
DEVICES=${DEVICES:-200}
CONNECTS=${CONNECTS:-20}
CONCURRENCY=${CONCURRENCY:-8}
# Round trip rounds: one round of 200 commands is some 0.4 s of server CPU,
# too little to tell a change from the machine's noise.
ROUNDS=${ROUNDS:-5}
CURVE=${CURVE:-"1000 10000 100000"}
BACKLOG=${BACKLOG:-10000}
REPEAT=${REPEAT:-3}
OUTFILE=${OUTFILE:-BENCHMARKS.md}

case ${BENCH_ONLY:-} in
pg)
	mkdir -p "$BIN"
	"$GO" build -o "$BIN/orchard" ./cmd/orchard
	"$GO" build -o "$BIN/orchard-load" ./cmd/orchard-load
	;;
fanout) ;; # fanout_bench builds what it runs
*) build_all ;;
esac
rm -rf "$RUN" "$OUT" && mkdir -p "$RUN" "$OUT"
LOADFLAGS=(--devices "$DEVICES" --connects "$CONNECTS" --concurrency "$CONCURRENCY" --key-cache "$KEYS" --timeout 10m)
CMDLOG="$OUT/commands.txt"
: >"$CMDLOG"

# logcmd records a command for BENCHMARKS.md, without the PID or the
# Orchard API key (which lives in the data dir).
logcmd() {
	printf '%q ' "$@" | sed -e 's/--pid [0-9]*/--pid <server-pid>/' -e 's/--api-key [A-Za-z0-9_-]\{40,\}/--api-key "$(cat <data>\/api-key)"/' >>"$CMDLOG"
	echo >>"$CMDLOG"
}

# orchard_load <json> <label> <orchard-data-dir> <pid> <plain|tls> [extra flags...]
# On TLS the generator trusts the root payload of Orchard's enrollment profile.
orchard_load() {
	local json=$1 label=$2 data=$3 pid=$4 scheme=http
	[[ $5 == tls ]] && scheme=https
	shift 5
	local cmd=("$BIN/orchard-load" --target orchard --server "$scheme://$ORCHARD_ADDR" --api-key "$(cat "$data/api-key")"
		--pid "$pid" --label "$label" --json "$json" "${LOADFLAGS[@]}" "$@")
	logcmd "${cmd[@]}"
	"${cmd[@]}"
}

if [[ ${BENCH_ONLY:-} == fanout ]]; then
	fanout_bench
	OUTFILE=${OUTFILE_FANOUT:-$OUT/fanout.md}
	{
		echo "| target | measured | verdict |"
		echo "|---|---|---|"
		write_fanout_targets
		write_fanout_markdown
	} >"$OUTFILE"
	echo "wrote $OUTFILE in $SECONDS s"
	exit 0
fi

if [[ ${BENCH_ONLY:-} == pg ]]; then
	OUTFILE=${OUTFILE_PG:-$OUT/postgres.md}
	data="$RUN/pg-seeded"
	n=${CURVE##* }
	start_orchard "$data" plain # the CA, keys and database the seed needs
	stop_pid "$ORCHARD_PID"
	"$BIN/orchard-load" seed --data "$data" --devices "$n" | tee "$OUT/seed.txt"
	pg_bench "$data" "$n"
	write_pg_markdown >"$OUTFILE"
	echo "wrote $OUTFILE in $SECONDS s"
	exit 0
fi

nano_load() {
	local json=$1 label=$2 pid=$3
	shift 3
	local cmd=("$BIN/orchard-load" --target nanomdm --server "http://$NANO_ADDR" --api-key "$NANO_API_KEY"
		--scep-url "http://$SCEP_ADDR/scep" --challenge "$SCEP_CHALLENGE"
		--pid "$pid" --label "$label" --json "$json" "${LOADFLAGS[@]}" "$@")
	logcmd "${cmd[@]}"
	"${cmd[@]}"
}

# The runs of a comparison, as "<name> <server> <transport> <label> <flags...>"
# (underscores in the label print as spaces):
# Orchard on plain HTTP (reference), Orchard on its own TLS in every
# connection mode, NanoMDM on plain HTTP as before (its own listener).
RUNS=(
	"orchard-plain orchard plain Orchard_plain_h1 --conn h1"
	"orchard-tls-h1 orchard tls Orchard_TLS_h1 --conn h1"
	"orchard-tls-h2 orchard tls Orchard_TLS_h2 --conn h2"
	"orchard-tls-wake orchard tls Orchard_TLS_wake --conn wake"
	"nanomdm nanomdm plain NanoMDM_plain_h1 --conn h1"
)
# Sign-once reference runs (the figures of earlier BENCHMARKS.md).
ONCE_RUNS=(
	"orchard-plain orchard plain Orchard_plain_h1 --conn h1"
	"nanomdm nanomdm plain NanoMDM_plain_h1 --conn h1"
)

# measure <scenario> <scenario flags> <run>...: REPEAT rounds; each round
# runs every configuration once, on a fresh server start, so drift on a
# shared machine hits all alike. The tables show the run with the median
# connects/s and list every run.
measure() {
	local scenario=$1 sflags=$2 r spec name server transport label flags
	shift 2
	for r in $(seq 1 "$REPEAT"); do
		for spec in "$@"; do
			read -r name server transport label flags <<<"$spec"
			label=${label//_/ }
			local json="$OUT/$scenario-$name-$r.json"
			echo "== $scenario $r/$REPEAT: $label"
			if [[ $server == orchard ]]; then
				local data="$RUN/$scenario-$name-$r"
				start_orchard "$data" "$transport"
				# shellcheck disable=SC2086 # flags are words
				orchard_load "$json" "$label" "$data" "$ORCHARD_PID" "$transport" $sflags $flags
				stop_pid "$ORCHARD_PID" "$APNS_PID"
			else
				start_nanomdm "$RUN/$scenario-$name-$r"
				# shellcheck disable=SC2086
				nano_load "$json" "$label" "$NANO_PID" $sflags $flags
				stop_pid "$NANO_PID" "$SCEP_PID"
			fi
		done
	done
	for spec in "$@"; do
		read -r name _ <<<"$spec"
		pick_median "$OUT/$scenario-$name.json" "$OUT/$scenario-$name-"[0-9]*.json
	done
}

measure idle "--scenario idle" "${RUNS[@]}"
measure roundtrip "--scenario roundtrip --rounds $ROUNDS" "${RUNS[@]}"
measure idle-once "--scenario idle --sign-idle-once" "${ONCE_RUNS[@]}"

echo "== enrollment of $DEVICES devices (Orchard: profile, SCEP, Authenticate, TokenUpdate)"
for r in $(seq 1 "$REPEAT"); do
	data="$RUN/orchard-enroll-$r"
	start_orchard "$data" tls
	orchard_load "$OUT/enroll-orchard-$r.json" "Orchard TLS" "$data" "$ORCHARD_PID" tls --enroll-only
	stop_pid "$ORCHARD_PID" "$APNS_PID"
done
pick_median "$OUT/enroll-orchard.json" "$OUT/enroll-orchard-"*.json

echo "== cost curve (Orchard on TLS, h1)"
data="$RUN/orchard-curve"
start_orchard "$data" tls # creates the CA, the TLS pair and the database
stop_pid "$ORCHARD_PID" "$APNS_PID"
seeded=0 first=0 curve_files=()
# curve_point <name> <label> [flags...]: REPEAT runs of fresh devices.
curve_point() {
	local name=$1 label=$2 r
	shift 2
	for r in $(seq 1 "$REPEAT"); do
		start_orchard "$data" tls
		orchard_load "$OUT/curve-$name-$r.json" "$label" "$data" "$ORCHARD_PID" tls --conn h1 --scenario idle --first "$first" "$@"
		stop_pid "$ORCHARD_PID" "$APNS_PID"
		first=$((first + DEVICES + 1))
	done
	pick_median "$OUT/curve-$name.json" "$OUT/curve-$name-"*.json
	curve_files+=("$OUT/curve-$name.json")
}
for n in $CURVE; do
	add=$((n - seeded))
	if ((add > 0)); then
		logcmd "$BIN/orchard-load" seed --data "$data" --devices "$add" --first "$seeded"
		"$BIN/orchard-load" seed --data "$data" --devices "$add" --first "$seeded" | tee -a "$OUT/seed.txt"
		# Write back the seeder's dirty pages now, or the kernel does it
		# during the measurement and slows every fsync there.
		sync
		seeded=$n
	fi
	curve_point "$n" "$n seeded"
done
if ((BACKLOG > 0)); then
	curve_point backlog "$seeded seeded + $BACKLOG-command backlog on one device" --backlog "$BACKLOG"
fi

pg_bench "$data" "$seeded"

# Last, alone on the machine: the heap and RSS figures are one process's.
fanout_bench

write_markdown "$OUTFILE" "${curve_files[@]}"
write_pg_markdown >>"$OUTFILE"
write_fanout_markdown >>"$OUTFILE"
echo "wrote $OUTFILE in $SECONDS s"
