#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft) on loopback, without Docker.
#   scripts/kafka.sh fetch    copy the broker jars from Maven Central into the cache (once)
#   scripts/kafka.sh start    fetch if needed, format storage if needed, start, wait until ready (reuses a
#                             broker this script already started)
#   scripts/kafka.sh stop     stop it          scripts/kafka.sh status   say whether it runs
#   scripts/kafka.sh brokers  print the bootstrap address
# When KAFKA_BROKERS is set, that cluster is used: start/stop do nothing.
# Env: KAFKA_PORT (default 19092; the controller listens on KAFKA_PORT+1), KAFKA_HOME (jar cache + data,
# default ~/.cache/orders-es/kafka), KAFKA_DATA_DIR (this broker's data, config, log and pid; default
# $KAFKA_HOME/run-$KAFKA_PORT: a second broker needs only its own KAFKA_PORT), KAFKA_HEAP (default 512m).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${KAFKA_PORT:-19092}"
controller_port=$((port + 1))
home="${KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/orders-es/kafka}"
libs="$home/libs"
run="${KAFKA_DATA_DIR:-$home/run-$port}"
pidfile="$run/kafka.pid"
log="$run/server.log"
name=kafka
# shellcheck source=scripts/lib/java-server.sh
. "$here/lib/java-server.sh"

brokers() { echo "${KAFKA_BROKERS:-127.0.0.1:$port}"; }

started() { grep -q "Kafka Server started" "$log" 2>/dev/null && answering; }

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  maven_fetch "$here/kafka/pom.xml" "the broker jars"
  touch "$libs/.complete"
}

write_config() {
  mkdir -p "$run/data"
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$run/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
PROPS
  cat > "$run/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
PROPS
}

java_opts=(-Xms256m -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j.configuration="file:$run/log4j.properties" -cp "$libs/*")

java_cmd() { java "${java_opts[@]}" "$@"; }

start() {
  if [ -n "${KAFKA_BROKERS:-}" ]; then brokers; return 0; fi
  if running && answering; then brokers; return 0; fi
  if running; then
    # still booting (a loaded machine): wait for it rather than start a second broker on the same data dir
    for _ in $(seq 1 120); do
      if answering; then brokers; return 0; fi
      running || break
      sleep 0.5
    done
    if running; then echo "kafka: the broker (pid $(cat "$pidfile")) runs but does not answer on $port" >&2; exit 1; fi
  fi
  if answering; then
    echo "kafka: port $port is taken by a process this script did not start; set KAFKA_PORT or KAFKA_BROKERS" >&2
    exit 1
  fi
  fetch
  write_config
  if [ ! -f "$run/data/meta.properties" ]; then
    java_cmd kafka.tools.StorageTool format -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
      -c "$run/server.properties" >/dev/null
  fi
  : > "$log"
  start_java "$run/stdout.log" "${java_opts[@]}" kafka.Kafka "$run/server.properties"
  wait_ready 60 started brokers "$log" "$run/stdout.log"
}

stop() {
  if [ -n "${KAFKA_BROKERS:-}" ]; then return 0; fi
  stop_server
}

case "${1:-start}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) if [ -n "${KAFKA_BROKERS:-}" ] || (running && answering); then echo "running $(brokers)"; else echo "stopped"; exit 3; fi ;;
  brokers) brokers ;;
  *) echo "usage: $0 fetch|start|stop|status|brokers" >&2; exit 2 ;;
esac
