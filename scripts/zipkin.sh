#!/usr/bin/env bash
# A Zipkin server (tracing backend: UI + JSON API, in-memory storage) on loopback, without Docker.
#   scripts/zipkin.sh fetch    copy io.zipkin:zipkin-server:3.5.1 (classifier exec) from Maven Central into the cache
#   scripts/zipkin.sh start    fetch if needed, start, wait until /health answers UP; prints the base URL
#                              (reuses a server this script already started)
#   scripts/zipkin.sh stop     stop it          scripts/zipkin.sh status   say whether it runs
# Env: ZIPKIN_PORT (default 19411), ZIPKIN_HOME (jar cache + logs, default ~/.cache/orders-es/zipkin),
# ZIPKIN_HEAP (default 256m).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${ZIPKIN_PORT:-19411}"
home="${ZIPKIN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/orders-es/zipkin}"
libs="$home/libs"
jar="$libs/zipkin-server-3.5.1-exec.jar"
run="$home/run-$port"
pidfile="$run/zipkin.pid"
log="$run/zipkin.log"
name=zipkin
# shellcheck source=scripts/lib/java-server.sh
. "$here/lib/java-server.sh"

url() { echo "http://127.0.0.1:$port"; }

healthy() { curl -fsS --max-time 2 "$(url)/health" 2>/dev/null | grep -q '"UP"'; }

fetch() {
  if [ -f "$jar" ]; then return 0; fi
  maven_fetch "$here/zipkin/pom.xml" "the server jar (~131 MB)"
  [ -f "$jar" ] || { echo "zipkin: $jar missing after the fetch" >&2; exit 1; }
}

start() {
  if running && healthy; then url; return 0; fi
  if answering && ! running; then
    echo "zipkin: port $port is taken by a process this script did not start; set ZIPKIN_PORT" >&2
    exit 1
  fi
  fetch
  mkdir -p "$run"
  if ! running; then
    : > "$log"
    start_java "$log" -Xms64m -Xmx"${ZIPKIN_HEAP:-256m}" -Djava.awt.headless=true -jar "$jar" \
      --server.address=127.0.0.1 --server.port="$port"
  fi
  wait_ready 120 healthy url "$log"
}

stop() { stop_server; }

case "${1:-start}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) if running && healthy; then echo "running $(url)"; else echo "stopped"; exit 3; fi ;;
  url) url ;;
  *) echo "usage: $0 fetch|start|stop|status|url" >&2; exit 2 ;;
esac
