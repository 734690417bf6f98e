#!/usr/bin/env bash
# `npm start`: make sure PostgreSQL runs, start (or reuse) the local Kafka broker, then run every role in one
# process. Pass a role to run only that one: `npm start -- worker`. With KAFKA_BROKERS set, no broker is started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/postgres.sh
KAFKA_BROKERS="$(bash scripts/kafka.sh start)"
export KAFKA_BROKERS
exec node --import tsx src/main.ts "${1:-all}"
