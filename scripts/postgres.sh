#!/usr/bin/env bash
# Make sure a PostgreSQL answers at DATABASE_URL's host (default 127.0.0.1:5432). On our machines the local
# cluster is installed but may be stopped: start it. Elsewhere, say what is missing.
set -euo pipefail
# the default of DATABASE_URL is the program's (src/Config.ts), not a copy of it
default_url="$(sed -n 's/^export const DEFAULT_DATABASE_URL = "\(.*\)"$/\1/p' "$(dirname "$0")/../src/Config.ts")"
url="${DATABASE_URL:-$default_url}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=5432
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h "$host" -p "$port" && exit 0; sleep 1; done
fi
echo "PostgreSQL is not reachable at $host:$port: start it or set DATABASE_URL" >&2
exit 1
