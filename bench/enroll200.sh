#!/usr/bin/env bash
# Enrolls DEVICES (default 200) simulated devices into a fresh `orchard serve`
# through signed profile + SCEP + Authenticate + TokenUpdate and prints the
# wall time and the server's CPU seconds. Keys come from .bench/keys (made
# on first use, not timed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh
DEVICES=${DEVICES:-200}
CONCURRENCY=${CONCURRENCY:-8}
build_all
data="$RUN/enroll200"
rm -rf "$data" "$data.log"
mkdir -p "$OUT"
start_orchard "$data"
"$BIN/orchard-load" --target orchard --server "http://$ORCHARD_ADDR" --api-key "$(cat "$data/api-key")" \
	--pid "$ORCHARD_PID" --devices "$DEVICES" --concurrency "$CONCURRENCY" --key-cache "$KEYS" \
	--enroll-only --label "enroll $DEVICES" --json "$OUT/enroll200.json"
stop_pid "$ORCHARD_PID" "$APNS_PID"
