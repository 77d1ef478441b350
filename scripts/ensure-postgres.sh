#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries the tests start (internal/pgtest)
# are installed: as root it installs Debian's postgresql package when they
# are missing; otherwise it says which command to run. It starts nothing:
# each test binary runs its own throwaway server.
set -euo pipefail
if [ -n "${ORCHARD_PG_BIN:-}" ] && [ -x "$ORCHARD_PG_BIN/postgres" ]; then
  exit 0
fi
if compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing postgresql (the tests run a throwaway server from its binaries)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends postgresql
  exit 0
fi
echo "PostgreSQL server binaries are missing; install them with:" >&2
echo "  sudo apt-get update && sudo apt-get install -y postgresql" >&2
exit 1
