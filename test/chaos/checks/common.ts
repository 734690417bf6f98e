/**
 * What every check shares: the result shape and its constructor, what the runner observed from outside the
 * database (Observed), the order state machine the log is read with, and the input each check is given
 * (the snapshot, the observations and the indexes runChecks builds once for all checks).
 */
import type { SeenMessage } from "../kafkaio.js"
import type { Exchange, OrderRequest } from "../load.js"
import type { InjectedHostile } from "../faults/messages.js"
import type { DatabaseSnapshot, EventRow } from "./snapshot.js"

export interface CheckResult {
  readonly name: string
  readonly ok: boolean
  readonly summary: string
  readonly counts: Record<string, number>
  /** ids (order ids, keys, offsets) to grep for in the logs */
  readonly samples: ReadonlyArray<string>
  readonly details: ReadonlyArray<string>
}

/** When a fault that lasts was in effect (the nemesis records them): PostgreSQL hung or restarting (role
 * null), or a role killed, stopped or terminating; `to` null while it lasts. Times are epoch ms. */
export interface FaultWindow {
  readonly kind: string
  readonly role: string | null
  readonly from: number
  to: number | null
}

export interface Observed {
  readonly exchanges: ReadonlyArray<Exchange>
  readonly requests: ReadonlyMap<string, OrderRequest>
  readonly hostile: ReadonlyArray<InjectedHostile>
  readonly topic: ReadonlyArray<SeenMessage>
  readonly dlqTopic: ReadonlyArray<SeenMessage>
  readonly topicComplete: boolean
  readonly termResults: ReadonlyArray<{ role: string; exitedInMs: number | null }>
  readonly termDeadlineMs: number
  /** IDEMPOTENCY_LEASE_MS of the roles */
  readonly leaseMs: number
  readonly verify: { code: number; differences: number | null; output: string }
  readonly quiescence: { reached: boolean; seconds: number; boundSeconds: number }
  readonly eventsTopic: string
  readonly faultWindows: ReadonlyArray<FaultWindow>
  /** the api role (api1, api2) that serves each base URL of the load */
  readonly apiRoles: ReadonlyMap<string, string>
  /** the load's client timeout: a request not answered within it has status null */
  readonly clientTimeoutMs: number
}

export const TRANSITIONS: Record<string, readonly [string | null, string]> = {
  OrderPlaced: [null, "CREATED"],
  PaymentRequested: ["CREATED", "PAYMENT_PENDING"],
  // a durable retry of the pending payment: the state stays PAYMENT_PENDING
  PaymentRetryScheduled: ["PAYMENT_PENDING", "PAYMENT_PENDING"],
  OrderPaid: ["PAYMENT_PENDING", "PAID"],
  OrderFailed: ["PAYMENT_PENDING", "FAILED"],
  OrderCancelled: ["CREATED", "CANCELLED"]
}
export const TERMINAL = new Set(["PAID", "FAILED", "CANCELLED"])

export const check = (name: string, failures: ReadonlyArray<string>, summary: string, counts: Record<string, number>, samples: ReadonlyArray<string> = [], details: ReadonlyArray<string> = []): CheckResult => ({
  name,
  ok: failures.length === 0,
  summary: failures.length === 0 ? summary : `${summary} — ${failures.length} failure(s)`,
  counts,
  samples: samples.slice(0, 5),
  details: [...failures.slice(0, 15), ...(failures.length > 15 ? [`… and ${failures.length - 15} more`] : []), ...details]
})

/** A check's input: the snapshot, the observations, and indexes over them built once by runChecks. */
export interface CheckInput {
  readonly db: DatabaseSnapshot
  readonly seen: Observed
  /** each order's events, in version order */
  readonly streams: ReadonlyMap<string, ReadonlyArray<EventRow>>
  readonly ordersById: ReadonlyMap<string, DatabaseSnapshot["orders"][number]>
  /** the exchanges that placed an order (every purpose but "cancel") */
  readonly orderPosts: ReadonlyArray<Exchange>
  /** orderPosts by Idempotency-Key */
  readonly byKey: ReadonlyMap<string, ReadonlyArray<Exchange>>
  readonly orderIdOf: (e: Exchange) => string | undefined
}
