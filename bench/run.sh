#!/usr/bin/env bash
# Side-by-side load benchmark of Orchard and NanoMDM on loopback, then
# Orchard's cost curve; writes BENCHMARKS.md. Called by `make bench`.
# Everything it builds or stores goes under .bench/ (gitignored).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

DEVICES=${DEVICES:-200}
CONNECTS=${CONNECTS:-20}
CONCURRENCY=${CONCURRENCY:-8}
CURVE=${CURVE:-"1000 10000 100000"}
BACKLOG=${BACKLOG:-10000}
REPEAT=${REPEAT:-3}
OUTFILE=${OUTFILE:-BENCHMARKS.md}

build_all
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

# orchard_load <json> <label> <orchard-data-dir> <pid> [extra flags...]
orchard_load() {
	local json=$1 label=$2 data=$3 pid=$4
	shift 4
	local cmd=("$BIN/orchard-load" --target orchard --server "http://$ORCHARD_ADDR" --api-key "$(cat "$data/api-key")"
		--pid "$pid" --label "$label" --json "$json" "${LOADFLAGS[@]}" "$@")
	logcmd "${cmd[@]}"
	"${cmd[@]}"
}

nano_load() {
	local json=$1 label=$2 pid=$3
	shift 3
	local cmd=("$BIN/orchard-load" --target nanomdm --server "http://$NANO_ADDR" --api-key "$NANO_API_KEY"
		--scep-url "http://$SCEP_ADDR/scep" --challenge "$SCEP_CHALLENGE"
		--pid "$pid" --label "$label" --json "$json" "${LOADFLAGS[@]}" "$@")
	logcmd "${cmd[@]}"
	"${cmd[@]}"
}

# Each measurement runs REPEAT times on a fresh server start (Orchard and
# NanoMDM alternating, so drift on a shared machine hits both alike); the
# tables show the run with the median connects/s and list every run.
# scenario_flags <name>: the generator flags of a comparison scenario.
scenario_flags() {
	case $1 in
	idle) echo --scenario idle ;;
	idle-fresh) echo --scenario idle --sign-idle-once=false ;;
	roundtrip) echo --scenario roundtrip ;;
	esac
}
for scenario in idle idle-fresh roundtrip; do
	read -ra flags <<<"$(scenario_flags "$scenario")"
	for r in $(seq 1 "$REPEAT"); do
		echo "== $scenario $r/$REPEAT: Orchard"
		data="$RUN/orchard-$scenario-$r"
		start_orchard "$data"
		orchard_load "$OUT/$scenario-orchard-$r.json" Orchard "$data" "$ORCHARD_PID" "${flags[@]}"
		stop_pid "$ORCHARD_PID"

		echo "== $scenario $r/$REPEAT: NanoMDM"
		dir="$RUN/nanomdm-$scenario-$r"
		start_nanomdm "$dir"
		nano_load "$OUT/$scenario-nanomdm-$r.json" NanoMDM "$NANO_PID" "${flags[@]}"
		stop_pid "$NANO_PID" "$SCEP_PID"
	done
	pick_median "$OUT/$scenario-orchard.json" "$OUT/$scenario-orchard-"*.json
	pick_median "$OUT/$scenario-nanomdm.json" "$OUT/$scenario-nanomdm-"*.json
done

echo "== enrollment of $DEVICES devices (Orchard: profile, SCEP, Authenticate, TokenUpdate)"
for r in $(seq 1 "$REPEAT"); do
	data="$RUN/orchard-enroll-$r"
	start_orchard "$data"
	orchard_load "$OUT/enroll-orchard-$r.json" "Orchard" "$data" "$ORCHARD_PID" --enroll-only
	stop_pid "$ORCHARD_PID"
done
pick_median "$OUT/enroll-orchard.json" "$OUT/enroll-orchard-"*.json

echo "== cost curve (Orchard)"
data="$RUN/orchard-curve"
start_orchard "$data" # creates the CA and database
stop_pid "$ORCHARD_PID"
seeded=0 first=0 curve_files=()
# curve_point <name> <label> [flags...]: REPEAT runs of fresh devices.
curve_point() {
	local name=$1 label=$2 r
	shift 2
	for r in $(seq 1 "$REPEAT"); do
		start_orchard "$data"
		orchard_load "$OUT/curve-$name-$r.json" "$label" "$data" "$ORCHARD_PID" --scenario idle --first "$first" "$@"
		stop_pid "$ORCHARD_PID"
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

write_markdown "$OUTFILE" "${curve_files[@]}"
echo "wrote $OUTFILE"
