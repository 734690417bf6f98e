/**
 * Backends for the properties: the durable part (event store, projection, inbox, idempotency keys — in memory
 * or on a PostgreSQL test database — and the in-memory payment provider with its ledger) outlives "processes";
 * a process (order actors + payment processor) is built fresh on each (re)start, so in-process state is lost
 * at a crash exactly as when a real process dies.
 */
import { ConfigProvider, Context, Effect, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { randomUUID } from "node:crypto"
import { MemoryStores, PgStores } from "../src/Stores.js"
import { OrderActors } from "../src/actor/OrderActors.js"
import { CrashPoints } from "../src/CrashPoints.js"
import { DeadLetters, type Parked } from "../src/deadletter/DeadLetters.js"
import { Kafka, type OutgoingMessage, topicsFor } from "../src/kafka/Kafka.js"
import { Relay } from "../src/outbox/Relay.js"
import { MemoryPaymentGateway, MemoryProvider, PaymentGateway } from "../src/payment/PaymentGateway.js"
import { PaymentProcessor } from "../src/payment/PaymentProcess.js"
import { parseLogLevel } from "../src/observability/Logging.js"
import { onTestDatabase } from "../test/support/TestDatabase.js"
import type { Backend } from "./support.js"

export const workerEnv = ConfigProvider.fromMap(new Map([
  ["PAYMENT_WORKER_GROUP", "props"],
  ["PAYMENT_QUICK_ATTEMPTS", "1"],
  ["PAYMENT_MAX_ATTEMPTS", "3"],
  ["PAYMENT_RETRY_BASE_MS", "1"],
  ["PAYMENT_RETRY_DELAY_MS", "0"],
  ["BREAKER_THRESHOLD", "1000000"],
  ["BREAKER_COOLDOWN_MS", "1"]
]))

/** The stores of one backend. PostgreSQL: one migrated test database per file, shared by all runs. */
export const storesFor = (backend: Backend, suite: string) => {
  if (backend === "memory") return { fresh: () => MemoryStores, dispose: () => Promise.resolve() }
  const runtime = ManagedRuntime.make(onTestDatabase(suite, PgStores))
  return {
    // every run shares the database (runs use fresh order ids, so they do not meet)
    fresh: () => Layer.effectContext(runtime.runtimeEffect.pipe(Effect.map((rt) => rt.context as Context.Context<Layer.Layer.Success<typeof PgStores>>))),
    dispose: () => runtime.dispose()
  }
}

/** A provider wrapper that forgets the idempotency key (a deliberately broken variant, for mutation checks). */
export const withoutIdempotencyKey = Layer.effect(
  PaymentGateway,
  Effect.map(PaymentGateway, (gateway) =>
    PaymentGateway.of({
      ...gateway,
      charge: (request) => gateway.charge({ ...request, idempotencyKey: randomUUID() }),
      refund: (request) => gateway.refund({ ...request, idempotencyKey: randomUUID() })
    }))
)

/** Dead letters in memory (the PostgreSQL table's twin for fast runs): parked once per source message. */
export const MemoryDeadLetters = Layer.sync(DeadLetters, () => {
  const parked = new Map<string, Parked>()
  const unused = () => Effect.dieMessage("MemoryDeadLetters keeps what is parked; the property replays it itself")
  return DeadLetters.make({
    park: (p) =>
      Effect.sync(() => {
        const source = `${p.consumer}/${p.message.topic}/${p.message.partition}/${p.message.offset}`
        if (!parked.has(source)) parked.set(source, p)
      }),
    list: unused,
    get: unused,
    replay: unused,
    discard: unused
  })
})

/** Durable context of one run: the stores plus a fresh in-memory provider, armable crash points, the
 * in-memory topic and the dead letters (the PostgreSQL table with the PostgreSQL stores). */
export const durableLayer = <E, R>(stores: Layer.Layer<any, E, R>, broken = false, backend: Backend = "memory") =>
  Layer.mergeAll(
    broken ? withoutIdempotencyKey.pipe(Layer.provideMerge(MemoryPaymentGateway)) : MemoryPaymentGateway,
    CrashPoints.armable,
    backend === "memory" ? MemoryDeadLetters : DeadLetters.Default
  ).pipe(Layer.provideMerge(MemoryKafka), Layer.provideMerge(stores))

/** One process: fresh actors, payment processor and relay over the durable context. */
export const processLayer = Layer.fresh(
  Layer.mergeAll(PaymentProcessor.Default, Relay.Default).pipe(Layer.provideMerge(Layer.fresh(OrderActors.Default)))
).pipe(
  Layer.provide(Layer.setConfigProvider(workerEnv))
)

export { MemoryProvider }

/** Run a property's program, logging at LOG_LEVEL (Warning in tests). */
/**
 * Run a property's program. Logs at Error unless PROPERTY_LOG_LEVEL names a level: the properties park and
 * retry by design, and thousands of warning lines per run, each relayed by vitest from its worker, timed out
 * vitest's own RPC ("Timeout calling onTaskUpdate", failing a run whose tests all passed).
 */
export const run = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.runPromise(effect.pipe(
    Logger.withMinimumLogLevel(process.env.PROPERTY_LOG_LEVEL ? parseLogLevel(process.env.PROPERTY_LOG_LEVEL) : LogLevel.Error)
  ))

/**
 * An in-memory broker for the relay in property runs: `send` appends to a topic log (what Kafka keeps);
 * consumers are the property's own driver, reading that log. (The real consumer loop is tested on Kafka.)
 */
export class MemoryTopic extends Context.Tag("MemoryTopic")<MemoryTopic, Array<OutgoingMessage>>() {}

export const MemoryKafka = Layer.effect(
  Kafka,
  Effect.map(MemoryTopic, (log) =>
    Kafka.of({
      topics: topicsFor("props."),
      ping: Effect.void,
      send: (_, messages) => Effect.sync(() => void log.push(...messages)),
      // raw sends go to the dead-letter topic (parking's copy); the properties read the table, not that topic
      sendRaw: (topic) => topic === topicsFor("props.").deadLetters ? Effect.void : Effect.dieMessage("MemoryKafka: raw sends to dead letters only"),
      lag: () => Effect.succeed(0),
      lagByPartition: () => Effect.succeed([]),
      consumer: () => Effect.dieMessage("MemoryKafka has no consumers: the property drives consumption")
    }))
).pipe(Layer.provideMerge(Layer.sync(MemoryTopic, () => [])))
