/**
 * The checks of the payment properties (p4-p5-p10-payments.test.ts) once a run has quiesced: nothing committed
 * past an unfinished message, each order's events on the topic in version order, every order settled with a
 * legal, contiguous log, the projection equal to its fold, and exactly one charge at the provider.
 */
import { Context, Effect, Either } from "effect"
import type { OrderId } from "../src/domain/Order.js"
import { fromMessage } from "../src/kafka/Envelope.js"
import { MemoryProvider } from "../src/payment/PaymentGateway.js"
import { checkStoredOrder } from "../test/support/invariants.js"
import { MemoryTopic } from "./harness.js"
import type { makeWorkerDriver } from "./worker-driver.js"

export /** After quiescence: offsets, the topic's order, every order settled with a legal log and exactly one charge. */
const settledChecks = (durable: Context.Context<any>, worker: Effect.Effect.Success<ReturnType<typeof makeWorkerDriver>>, orderIds: ReadonlyArray<OrderId>) =>
  Effect.gen(function*() {
    const violations: Array<string> = []
    const provider = Context.get(durable, MemoryProvider)
    const topic = Context.get(durable, MemoryTopic)
    const { committed, handled } = worker
      // nothing committed past an unfinished message: every message below a committed offset was handled to its
      // end by some process (a later copy of the same order would hide a skipped one from the checks below)
      for (const [partition, log] of worker.partitionLogs().entries()) {
        const offset = committed.get(partition) ?? 0
        const skipped = log.slice(0, offset).filter((m) => !handled.has(`${partition}/${m.offset}`))
        if (skipped.length > 0) violations.push(`partition ${partition}: offsets ${skipped.map((m) => m.offset).join(",")} committed, never handled`)
        const placedOnly = log.slice(offset).filter((m) => {
          const d = fromMessage(m.value)
          return Either.isRight(d) && d.right.envelope.type === "OrderPlaced"
        })
        if (placedOnly.length > 0) violations.push(`partition ${partition}: ${placedOnly.length} OrderPlaced messages past the committed offset ${offset}`)
      }
      // each order's events reached the topic in version order, duplicates allowed (8)
      const ours = new Set<string>(orderIds)
      const highest = new Map<string, number>()
      for (const message of topic) {
        if (!ours.has(message.key)) continue
        const decoded = fromMessage(message.value)
        if (Either.isLeft(decoded)) continue
        const version = decoded.right.envelope.version
        const top = highest.get(message.key) ?? 0
        if (version > top + 1) violations.push(`${message.key}: v${version} reached the topic before v${top + 1}`)
        if (version === top + 1) highest.set(message.key, version)
      }

      for (const id of orderIds) {
        const stored = yield* checkStoredOrder(id).pipe(Effect.provide(durable))
        violations.push(...stored.violations.map((v) => `${id}: ${v}`))
        if (stored.state?.status !== "PAID" && stored.state?.status !== "FAILED") {
          violations.push(`${id} not settled: ${stored.state?.status}`)
        }
        // placed, payment requested, paid or failed — and one PaymentRetryScheduled per failed pass
        const retries = stored.events.filter((e) => e._tag === "PaymentRetryScheduled").length
        if (stored.events.length !== 3 + retries) violations.push(`${id} has ${stored.events.length} events, not 3 + ${retries} retries`)
        if ((highest.get(id) ?? 0) !== stored.events.length) {
          violations.push(`${id}: ${highest.get(id) ?? 0} of ${stored.events.length} events reached the topic`)
        }
        const charges = [...provider.ledger.values()].filter((c) => c.orderId === id).length
        if (charges !== 1) violations.push(`${id} charged ${charges} times`)
      }
    return violations
  })
