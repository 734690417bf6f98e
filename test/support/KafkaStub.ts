/** A Kafka without a broker, for tests of code that needs the service but not the wire: sends are dropped,
 * lag is 0, consumers are refused (a test passes its own `consumer` to see how the code copes). */
import { Effect, Layer } from "effect"
import { Kafka, topicsFor } from "../../src/kafka/Kafka.js"

export const kafkaStub = (prefix: string, overrides: Partial<Kafka["Type"]> = {}) =>
  Layer.succeed(
    Kafka,
    Kafka.of({
      topics: topicsFor(prefix),
      ping: Effect.void,
      send: () => Effect.void,
      sendRaw: () => Effect.void,
      lag: () => Effect.succeed(0),
      lagByPartition: () => Effect.succeed([]),
      consumer: () => Effect.dieMessage("this Kafka stub has no consumers"),
      ...overrides
    })
  )
