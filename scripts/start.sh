#!/usr/bin/env bash
# `npm start`: make sure PostgreSQL runs, start (or reuse) the local Kafka broker, compile, then run every
# role in one process. Pass roles to run only those: `npm start -- worker` or `npm start -- api,relay`.
# With KAFKA_BROKERS set, no broker is started.
# The old-generation heap is capped at 256 MB (NODE_HEAP_MB): the live heap under load is ~70 MB, and
# without a cap V8 lets garbage pile up to over 1 GB of RSS before collecting it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/postgres.sh
KAFKA_BROKERS="$(bash scripts/kafka.sh start)"
export KAFKA_BROKERS
npx tsc -p tsconfig.build.json
exec node --max-old-space-size="${NODE_HEAP_MB:-256}" dist/main.js "${1:-all}"
