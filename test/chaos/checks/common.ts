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
  /** `orders-es reconcile` at quiescence (the log against the provider's ledger) */
  readonly reconcile?: { code: number; differences: number | null; output: string }
  readonly quiescence: { reached: boolean; seconds: number; boundSeconds: number }
  readonly eventsTopic: string
  readonly faultWindows: ReadonlyArray<FaultWindow>
  /** the api role (api1, api2) that serves each base URL of the load */
  readonly apiRoles: ReadonlyMap<string, string>
  /** the load's client timeout: a request not answered within it has status null */
  readonly clientTimeoutMs: number
  /** the attempts of the notifier's retry schedule (WEBHOOK_RETRY_SCHEDULE's steps): a delivery failed with
   * fewer, and no 410, gave up early */
  readonly webhookAttempts?: number
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
export const TERMINAL = new Set(["PAID", "FAILED", "CANCELLED", "PARTIALLY_REFUNDED", "REFUNDED"])

/** An order's state as its events leave it, refunds included (the checker's own statement of the rules). */
export interface Walked {
  status: string | null
  amount: bigint
  refunded: bigint
  readonly refunds: Map<string, { minor: bigint; status: "pending" | "succeeded" | "failed"; parked: boolean }>
}

/** Walk one order's events; every event that is not a legal successor of the state before it is named. */
export const walk = (events: ReadonlyArray<EventRow>): { readonly state: Walked; readonly illegal: Array<string> } => {
  const state: Walked = { status: null, amount: 0n, refunded: 0n, refunds: new Map() }
  const illegal: Array<string> = []
  for (const e of events) {
    const refund = typeof e.data.refundId === "string" ? state.refunds.get(e.data.refundId) : undefined
    const why = (() => {
      switch (e.type) {
        case "RefundRequested": {
          const minor = BigInt(e.data.amount.minor)
          const taken = [...state.refunds.values()].reduce((sum, r) => r.status === "failed" ? sum : sum + r.minor, 0n)
          if (state.status !== "PAID" && state.status !== "PARTIALLY_REFUNDED") return `a refund of a ${state.status} order`
          if (refund !== undefined || minor <= 0n || taken + minor > state.amount) return `a refund of ${minor} with ${taken} of ${state.amount} taken`
          state.refunds.set(e.data.refundId, { minor, status: "pending", parked: false })
          return undefined
        }
        case "RefundRetryScheduled":
        case "RefundFailed":
        case "RefundSucceeded": {
          if (refund?.status !== "pending") return `no pending refund ${e.data.refundId}`
          if (e.type === "RefundRetryScheduled") refund.parked = e.data.dueAt === null
          else if (e.type === "RefundFailed") refund.status = "failed"
          else {
            refund.status = "succeeded"
            state.refunded += refund.minor
            state.status = state.refunded >= state.amount ? "REFUNDED" : "PARTIALLY_REFUNDED"
          }
          return undefined
        }
        default: {
          const t = TRANSITIONS[e.type]
          if (!t || t[0] !== state.status) return "not a successor"
          if (e.type === "OrderPlaced") state.amount = BigInt(e.data.amount?.minor ?? 0)
          state.status = t[1]
          return undefined
        }
      }
    })()
    if (why !== undefined) illegal.push(`v${e.version}: ${e.type} from ${state.status ?? "nothing"} (${why})`)
  }
  return { state, illegal }
}

/** Settled: a terminal state and no refund pending. */
export const settled = (s: Walked) => s.status !== null && TERMINAL.has(s.status) && [...s.refunds.values()].every((r) => r.status !== "pending")

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
