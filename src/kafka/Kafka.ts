/**
 * Kafka over kafkajs: the only module that touches the kafkajs Promise API. One client per process; an
 * idempotent producer (acks = all, at most 5 requests in flight); topics created by the admin client at
 * startup (never by broker auto-creation); consumers made per group.
 */
import { Config, Context, Effect, Layer, type Scope } from "effect"
import {
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  Kafka as KafkaJs,
  logLevel,
  type Message
} from "kafkajs"

export const KafkaConfig = Config.all({
  brokers: Config.string("KAFKA_BROKERS").pipe(Config.withDefault("127.0.0.1:19092")),
  clientId: Config.string("KAFKA_CLIENT_ID").pipe(Config.withDefault("orders-es")),
  /** Prefix of every topic name: lets test suites and environments share one cluster. */
  topicPrefix: Config.string("KAFKA_TOPIC_PREFIX").pipe(Config.withDefault("")),
  partitions: Config.integer("KAFKA_PARTITIONS").pipe(Config.withDefault(6))
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

export class Kafka extends Context.Tag("Kafka")<Kafka, {
  readonly topics: Topics
  /** Send to one topic; resolves once the broker acknowledged (acks = all). */
  readonly send: (topic: string, messages: ReadonlyArray<OutgoingMessage>) => Effect.Effect<void, KafkaError>
  /** Messages of `topic` the group has not committed yet, summed over partitions. */
  readonly lag: (groupId: string, topic: string) => Effect.Effect<number, KafkaError>
  /** The same, per partition (for /metrics). */
  readonly lagByPartition: (
    groupId: string,
    topic: string
  ) => Effect.Effect<ReadonlyArray<{ readonly partition: number; readonly lag: number }>, KafkaError>
  /** A consumer of the group, connected and subscribed; disconnected when the scope closes. */
  readonly consumer: (
    groupId: string,
    topics: ReadonlyArray<string>
  ) => Effect.Effect<Consumer, KafkaError, Scope.Scope>
}>() {}

const attempt = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new KafkaError(`${what}: ${e instanceof Error ? e.message : String(e)}`) })

export const makeKafka = (config: KafkaConfig) =>
  Effect.gen(function*() {
    const client = new KafkaJs({
      clientId: config.clientId,
      brokers: config.brokers.split(",").map((b) => b.trim()),
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, retries: 8 }
    })
    const topics = topicsFor(config.topicPrefix)

    const admin = client.admin()
    yield* attempt("admin connect", () => admin.connect())
    yield* attempt("create topics", () =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: topics.orderEvents, numPartitions: config.partitions, replicationFactor: 1 },
          { topic: topics.deadLetters, numPartitions: 1, replicationFactor: 1 }
        ]
      }))
    yield* Effect.addFinalizer(() => Effect.promise(() => admin.disconnect()))

    const producer = client.producer({ idempotent: true, maxInFlightRequests: 5 })
    yield* Effect.acquireRelease(attempt("producer connect", () => producer.connect()), () =>
      Effect.promise(() => producer.disconnect()))

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

    return Kafka.of({
      topics,
      lag: (groupId, topic) => Effect.map(lagByPartition(groupId, topic), (ps) => ps.reduce((sum, p) => sum + p.lag, 0)),
      lagByPartition,
      send: (topic, messages) =>
        attempt(`send to ${topic}`, () =>
          producer.send({ topic, acks: -1, messages: messages as Array<Message> })).pipe(Effect.asVoid),
      consumer: (groupId, subscribed) =>
        Effect.acquireRelease(
          Effect.gen(function*() {
            const consumer = client.consumer({
              groupId,
              sessionTimeout: 10_000,
              heartbeatInterval: 1_000,
              maxWaitTimeInMs: 100,
              retry: { retries: 20 }
            })
            yield* attempt("consumer connect", () => consumer.connect())
            yield* attempt("subscribe", () => consumer.subscribe({ topics: [...subscribed], fromBeginning: true }))
            return consumer
          }),
          (consumer) => Effect.promise(() => consumer.disconnect())
        )
    })
  })

export const KafkaLive = Layer.scoped(Kafka, Effect.flatMap(KafkaConfig, makeKafka)).pipe(Layer.orDie)

export const headerString = (headers: IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name]
  if (value === undefined) return undefined
  const first = Array.isArray(value) ? value[0] : value
  return first === undefined ? undefined : first.toString()
}

export type { Consumer, EachBatchPayload }
