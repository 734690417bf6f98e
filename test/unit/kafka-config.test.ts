/**
 * The consumer's fetch wait (KAFKA_FETCH_MAX_WAIT_MS): an idle consumer fetches this often, so it is long by
 * default; kafkajs leaves the group at shutdown only once the fetch in progress ended, so the default stays
 * within a third of the shutdown's leave step (src/Shutdown.ts) — and a value that is set but not a number, not
 * positive or not below the leave step is refused, not replaced by the default.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import { KafkaConfig } from "../../src/kafka/Kafka.js"
import { shutdownBudget } from "../../src/Shutdown.js"

const load = (env: Record<string, string>) =>
  Effect.runSync(Effect.either(Effect.withConfigProvider(KafkaConfig, ConfigProvider.fromMap(new Map(Object.entries(env))))))

describe("KafkaConfig.fetchMaxWaitMs", () => {
  it("defaults to 500 ms with the default shutdown timeout", () => {
    const config = load({})
    expect(Either.getOrThrow(config).fetchMaxWaitMs).toBe(500)
  })

  it("stays within a third of the leave step of a shorter shutdown", () => {
    const wait = Either.getOrThrow(load({ SHUTDOWN_TIMEOUT_MS: "5000" })).fetchMaxWaitMs
    expect(wait).toBe(Math.floor(shutdownBudget(5_000).leaveMs / 3))
    expect(wait).toBeLessThan(500)
  })

  it("takes KAFKA_FETCH_MAX_WAIT_MS as given", () => {
    expect(Either.getOrThrow(load({ KAFKA_FETCH_MAX_WAIT_MS: "1000" })).fetchMaxWaitMs).toBe(1000)
  })

  it("refuses a value that is not an integer, not positive, or not below the shutdown's leave step", () => {
    expect(Either.isLeft(load({ KAFKA_FETCH_MAX_WAIT_MS: "soon" }))).toBe(true)
    expect(Either.isLeft(load({ KAFKA_FETCH_MAX_WAIT_MS: "0" }))).toBe(true)
    // the default shutdown's leave step is 1.5 s: a consumer stopping would not leave the group in it
    expect(Either.isLeft(load({ KAFKA_FETCH_MAX_WAIT_MS: "2000" }))).toBe(true)
    expect(Either.isRight(load({ KAFKA_FETCH_MAX_WAIT_MS: "1400" }))).toBe(true)
  })
})
