#!/usr/bin/env bash
# `npm start`: make sure PostgreSQL runs, start (or reuse) the local Kafka broker, compile, then run every
# role in one process. Pass roles to run only those: `npm start -- worker` or `npm start -- api,relay`.
# With KAFKA_BROKERS set, no broker is started. With TRACING=zipkin, a local Zipkin is started too.
# The old-generation heap is capped at 256 MB (NODE_HEAP_MB): the live heap under load is ~70 MB, and
# without a cap V8 lets garbage pile up to over 1 GB of RSS before collecting it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/postgres.sh
KAFKA_BROKERS="$(bash scripts/kafka.sh start)"
export KAFKA_BROKERS
# TRACING=zipkin: a local Zipkin (scripts/zipkin.sh) receives the spans, unless ZIPKIN_URL names another one.
if [ "${TRACING:-}" = "zipkin" ] && [ -z "${ZIPKIN_URL:-}" ]; then
  zipkin="$(bash scripts/zipkin.sh start)"
  export ZIPKIN_URL="$zipkin/api/v2/spans"
  echo "tracing: Zipkin UI at $zipkin/zipkin/ (spans: $ZIPKIN_URL)" >&2
fi
npx tsc -p tsconfig.build.json
# the young generation: 32 MiB semi-spaces instead of node's 16 — an order allocates much that dies young, and
# twice the room halves the scavenges (docs/PERFORMANCE.md "The young generation": 5-20 % less CPU per order)
exec node --max-old-space-size="${NODE_HEAP_MB:-256}" --max-semi-space-size="${NODE_SEMI_SPACE_MB:-32}" dist/main.js "$@"
