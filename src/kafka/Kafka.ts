/**
 * Kafka over kafkajs: the only module that touches the kafkajs Promise API. One client per process; an
 * idempotent producer (acks = all, at most 5 requests in flight); topics created by the admin client at
 * startup (never by broker auto-creation); consumers made per group.
 */
import { Config, ConfigError, Context, Effect, Either, Layer, Metric, Option, Runtime, type Scope } from "effect"
import { KafkaTopicPrefix } from "../Config.js"
import { ShutdownBudgetConfig, shutdownStep } from "../Shutdown.js"
import { makeProducerSession } from "./ProducerSession.js"
import "./RequestQueueFix.js"
import {
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  Kafka as KafkaJs,
  type logCreator,
  logLevel,
  type Message
} from "kafkajs"

export const KafkaConfig = Config.all({
  brokers: Config.string("KAFKA_BROKERS").pipe(Config.withDefault("127.0.0.1:19092")),
  clientId: Config.string("KAFKA_CLIENT_ID").pipe(Config.withDefault("orders-es")),
  /** Prefix of every topic name: lets test suites and environments share one cluster. */
  topicPrefix: KafkaTopicPrefix,
  partitions: Config.integer("KAFKA_PARTITIONS").pipe(Config.withDefault(6)),
  /** How long each disconnect may take at shutdown (a broker that is down would hold it for ever). */
  disconnectMs: ShutdownBudgetConfig.pipe(Config.map((budget) => budget.disconnectMs)),
  /**
   * How long a consumer's fetch waits at the broker for a message (it answers at once when one is there, so
   * this is not a delivery delay): an idle consumer fetches this often — at 100 ms that was ~10 ms of CPU a
   * second per process doing nothing (docs/PERFORMANCE.md "An idle consumer"). kafkajs only leaves the group at
   * shutdown once the fetch in progress ended (and a resumed partition joins at the next fetch), so the default
   * is the smaller of 500 ms and a third of the shutdown's leave step; a value set must be positive and below the
   * leave step (above, a stopping consumer would never get to leave the group: its partitions would wait the
   * session timeout).
   */
  fetchMaxWaitMs: Config.all([Config.option(Config.integer("KAFKA_FETCH_MAX_WAIT_MS")), ShutdownBudgetConfig]).pipe(
    Config.mapOrFail(([wait, budget]) =>
      Option.match(wait, {
        onNone: () => Either.right(Math.max(50, Math.min(500, Math.floor(budget.leaveMs / 3)))),
        onSome: (ms) =>
          ms > 0 && ms < budget.leaveMs
            ? Either.right(ms)
            : Either.left(ConfigError.InvalidData(
              ["KAFKA_FETCH_MAX_WAIT_MS"],
              `must be above 0 and below the shutdown's leave step (${Math.floor(budget.leaveMs)} ms, from SHUTDOWN_TIMEOUT_MS): got ${ms}`
            ))
      })
    )
  )
})
export type KafkaConfig = Config.Config.Success<typeof KafkaConfig>

export interface Topics {
  readonly orderEvents: string
  readonly deadLetters: string
}

export const topicsFor = (prefix: string): Topics => ({
  orderEvents: `${prefix}orders.events`,
  deadLetters: `${prefix}orders.events.dlq`
})

export class KafkaError extends Error {
  override readonly name = "KafkaError"
}

export interface OutgoingMessage {
  readonly key: string
  readonly value: string
  readonly headers: Record<string, string>
}

/** A message as bytes: what came off a topic, or goes back to one unchanged (dead letters, replays). */
export interface RawMessage {
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  /** In message order; a name may repeat. */
  readonly headers: ReadonlyArray<readonly [name: string, value: string | Uint8Array]>
}

/** A consumed message: its bytes and where it came from. */
export interface IncomingMessage extends RawMessage {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly headers: ReadonlyArray<readonly [name: string, value: Uint8Array]>
}

const toKafkaHeaders = (headers: RawMessage["headers"]): IHeaders => {
  const out: Record<string, Buffer | Array<Buffer>> = {}
  for (const [name, value] of headers) {
    const bytes = Buffer.from(value)
    const before = out[name]
    out[name] = before === undefined ? bytes : Array.isArray(before) ? [...before, bytes] : [before, bytes]
  }
  return out
}

/** kafkajs headers as ordered (name, bytes) pairs; a repeated name gives several pairs. */
export const fromKafkaHeaders = (headers: IHeaders | undefined): Array<readonly [string, Uint8Array]> =>
  Object.entries(headers ?? {}).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).flatMap((v) => v === undefined ? [] : [[name, Buffer.from(v)] as const])
  )

export const producersRenewed = Metric.counter("kafka_producers_renewed_total", {
  description: "producers retired after a failed send (kafkajs would reuse its sequence numbers)",
  incremental: true
})

export const kafkaClientLogs = Metric.counter("kafka_client_log_lines_total", {
  description: "warnings and errors the Kafka client logged (bridged into the JSON log as KAFKA_CLIENT lines)",
  incremental: true
})

export class Kafka extends Context.Tag("Kafka")<Kafka, {
  readonly topics: Topics
  /** Send to one topic; resolves once the broker acknowledged (acks = all). */
  readonly send: (topic: string, messages: ReadonlyArray<OutgoingMessage>) => Effect.Effect<void, KafkaError>
  /** Send messages byte for byte (keys, values and headers as given). */
  readonly sendRaw: (topic: string, messages: ReadonlyArray<RawMessage>) => Effect.Effect<void, KafkaError>
  /** The cluster answers for the orders topic (readiness: src/ops/Probes.ts); a ping still waiting is shared, not
   * repeated. */
  readonly ping: Effect.Effect<void, KafkaError>
  /** Messages of `topic` the group has not committed yet, summed over partitions. */
  readonly lag: (groupId: string, topic: string) => Effect.Effect<number, KafkaError>
  /** The same, per partition (for /metrics). */
  readonly lagByPartition: (
    groupId: string,
    topic: string
  ) => Effect.Effect<ReadonlyArray<{ readonly partition: number; readonly lag: number }>, KafkaError>
  /** A consumer of the group, connected and subscribed; disconnected when the scope closes. kafkajs never
   * restarts it by itself: a crash stops it (CRASH event) and its owner decides (src/kafka/KeyedConsumer.ts). */
  readonly consumer: (
    groupId: string,
    topics: ReadonlyArray<string>
  ) => Effect.Effect<Consumer, KafkaError, Scope.Scope>
}>() {}

const attempt = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new KafkaError(`${what}: ${e instanceof Error ? e.message : String(e)}`) })

/** kafkajs's own log lines at WARN and above, as our JSON lines (type KAFKA_CLIENT) with a metric. */
/** Lines about choices made here on purpose: the producer retries a bounded number of times (a send that
 * fails is the relay's to retry, duplicates are absorbed downstream), the default partitioner is ours, and
 * creating topics that exist already is how startup makes sure they exist (the admin call reports it). */
const expected = [
  /^Limiting retries for the idempotent producer/,
  /^KafkaJS v2\.0\.0 switched default partitioner/,
  /^Response CreateTopics/,
  // a heartbeat answered "rebalancing" is how a member learns of a rebalance: our REBALANCE lines say it
  /^Response Heartbeat\(.*\): The group is rebalancing/
]

const bridgeLogs = (runtime: Runtime.Runtime<never>): logCreator => () => ({ label, level, log, namespace }) => {
  const { message, timestamp: _t, logger: _l, stack: _s, ...fields } = log as Record<string, unknown>
  if (expected.some((e) => e.test(String(message)))) return
  const line = (level <= logLevel.ERROR ? Effect.logError : Effect.logWarning)(String(message)).pipe(
    Effect.annotateLogs({ type: "KAFKA_CLIENT", namespace, kafkaLevel: label, ...fields }),
    Effect.zipRight(Metric.increment(kafkaClientLogs))
  )
  Runtime.runFork(runtime)(line)
}

export const makeKafka = (config: KafkaConfig) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    yield* Metric.incrementBy(kafkaClientLogs, 0)
    const client = new KafkaJs({
      clientId: config.clientId,
      brokers: config.brokers.split(",").map((b) => b.trim()),
      logLevel: logLevel.WARN,
      logCreator: bridgeLogs(runtime),
      retry: { initialRetryTime: 100, retries: 8 }
    })
    const topics = topicsFor(config.topicPrefix)

    const disconnect = (what: string, f: () => Promise<void>) =>
      Effect.asVoid(shutdownStep(`${what} disconnect`, config.disconnectMs, Effect.promise(f)))

    // each client's disconnect is registered before its connect, which stays interruptible (no acquireRelease):
    // kafkajs retries a connect to a broker that does not answer for half a minute and more, and a SIGTERM
    // meanwhile must cut it short
    const admin = client.admin()
    yield* Effect.addFinalizer(() => disconnect("admin", () => admin.disconnect()))
    yield* attempt("admin connect", () => admin.connect())
    yield* attempt("create topics", () =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: topics.orderEvents, numPartitions: config.partitions, replicationFactor: 1 },
          // room for any message of the source topic plus the dlq-* headers
          {
            topic: topics.deadLetters,
            numPartitions: 1,
            replicationFactor: 1,
            configEntries: [{ name: "max.message.bytes", value: String(4 * 1024 * 1024) }]
          }
        ]
      }))

    // retired after a failed send: kafkajs would reuse that send's sequence numbers (src/kafka/ProducerSession.ts)
    const producer = makeProducerSession(
      () => client.producer({ idempotent: true, maxInFlightRequests: 5 }),
      (why) =>
        Runtime.runFork(runtime)(Effect.logWarning("producer replaced after a failed send").pipe(
          Effect.annotateLogs({ type: "PRODUCER_RENEWED", reason: why }),
          Effect.zipRight(Metric.increment(producersRenewed))
        ))
    )
    yield* Metric.incrementBy(producersRenewed, 0)
    yield* Effect.addFinalizer(() => disconnect("producer", () => producer.close().catch(() => {})))
    yield* attempt("producer connect", producer.start)

    const lagByPartition = (groupId: string, topic: string) =>
      attempt("consumer lag", async () => {
        const [ends, [committed]] = await Promise.all([
          admin.fetchTopicOffsets(topic),
          admin.fetchOffsets({ groupId, topics: [topic] })
        ])
        return ends.map((end) => {
          const done = committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? "-1"
          const from = done === "-1" ? Number(end.low) : Number(done)
          return { partition: end.partition, lag: Math.max(0, Number(end.high) - from) }
        })
      })

    let pinging: Promise<unknown> | undefined
    // the metadata of our topic only: `describeCluster` had the broker list every topic of the cluster, twice
    // (its own request and kafkajs's refresh), each second in every process — ~300 topics on a shared broker
    const ping = attempt("ping", () => {
      pinging ??= admin.fetchTopicMetadata({ topics: [topics.orderEvents] }).finally(() => pinging = undefined)
      return pinging
    })

    return Kafka.of({
      topics,
      ping: Effect.asVoid(ping),
      lag: (groupId, topic) => Effect.map(lagByPartition(groupId, topic), (ps) => ps.reduce((sum, p) => sum + p.lag, 0)),
      lagByPartition,
      send: (topic, messages) =>
        attempt(`send to ${topic}`, () =>
          producer.send({ topic, acks: -1, messages: messages as Array<Message> })).pipe(Effect.asVoid),
      sendRaw: (topic, messages) =>
        attempt(`send to ${topic}`, () =>
          producer.send({
            topic,
            acks: -1,
            messages: messages.map((m) => ({
              key: m.key === null ? null : Buffer.from(m.key),
              value: m.value === null ? null : Buffer.from(m.value),
              headers: toKafkaHeaders(m.headers)
            }))
          })).pipe(Effect.asVoid),
      // (disconnect registered first, connect interruptible: see the admin client above)
      consumer: (groupId, subscribed) =>
        Effect.gen(function*() {
          const consumer = client.consumer({
            groupId,
            sessionTimeout: 10_000,
            heartbeatInterval: 1_000,
            maxWaitTimeInMs: config.fetchMaxWaitMs,
            retry: { retries: 20, restartOnFailure: () => Promise.resolve(false) }
          })
          yield* Effect.addFinalizer(() => disconnect("consumer", () => consumer.disconnect()))
          yield* attempt("consumer connect", () => consumer.connect())
          yield* attempt("subscribe", () => consumer.subscribe({ topics: [...subscribed], fromBeginning: true }))
          return consumer
        })
    })
  })

export const KafkaLive = Layer.scoped(Kafka, Effect.flatMap(KafkaConfig, makeKafka)).pipe(Layer.orDie)

export type { Consumer, EachBatchPayload }
