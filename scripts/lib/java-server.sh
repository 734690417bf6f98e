# Sourced by scripts/kafka.sh and scripts/zipkin.sh: a Java server of ours on loopback, its jars fetched
# through Maven into a cache, its pid in a file. The sourcing script sets `name` (for messages), `port`,
# `libs` (the jar cache) and `pidfile` before calling these.

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# maven_fetch POM WHAT: copy the runtime dependencies of POM (Maven Central) into $libs.
maven_fetch() {
  mkdir -p "$libs"
  echo "$name: fetching $2 through Maven into $libs" >&2
  mvn -B -q -f "$1" org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
}

# start_java OUT ARGS...: `java ARGS` in the background, its output to OUT, its pid in $pidfile.
start_java() {
  local out="$1"
  shift
  nohup java "$@" > "$out" 2>&1 &
  echo $! > "$pidfile"
}

# wait_ready SECONDS READY PRINT LOG...: every 0.5 s for SECONDS, while the server runs: once READY succeeds,
# run PRINT and return. Otherwise show the last lines of the LOGs and exit 1.
wait_ready() {
  local seconds="$1" ready="$2" print="$3"
  shift 3
  for _ in $(seq 1 $((seconds * 2))); do
    if "$ready"; then "$print"; return 0; fi
    running || break
    sleep 0.5
  done
  echo "$name: the server did not become ready; last lines of $*:" >&2
  tail -n 20 "$@" >&2 || true
  exit 1
}

# stop_server: SIGTERM, up to 30 s, then SIGKILL.
stop_server() {
  if running; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 60); do running || break; sleep 0.5; done
    running && kill -9 "$(cat "$pidfile")" || true
  fi
  rm -f "$pidfile"
}
