/**
 * Named crash points of the relay and the worker. In production `hit` does nothing; tests arm a point so the
 * next pass through it dies with SimulatedCrash, as if the process were killed there. Durable state stays
 * (PostgreSQL, the broker); in-process state is thrown away by rebuilding the role's layer.
 */
import { Context, Effect, Layer } from "effect"

export type CrashPoint =
  | "relay.beforeSend"
  | "relay.afterSendBeforeMark"
  | "relay.midBatch"
  | "worker.afterChargeBeforeCommit"
  | "worker.afterRefundBeforeCommit"
  | "worker.afterCommitBeforeOffsetCommit"
  | "worker.consumerBatch"

export class SimulatedCrash extends Error {
  override readonly name = "SimulatedCrash"
  constructor(readonly point: CrashPoint) {
    super(`simulated crash at ${point}`)
  }
}

export const isSimulatedCrash = (u: unknown): u is SimulatedCrash => u instanceof SimulatedCrash

export class CrashPoints extends Context.Tag("CrashPoints")<CrashPoints, {
  readonly hit: (point: CrashPoint) => Effect.Effect<void>
  /** Whether any point can ever crash (false in production: callers may then skip work done only for them). */
  readonly armable: boolean
  /** Make the next `count` passes through `point` crash (tests). */
  readonly arm: (point: CrashPoint, count?: number) => Effect.Effect<void>
  /** How many simulated crashes `point` has caused so far (tests). */
  readonly crashes: (point: CrashPoint) => Effect.Effect<number>
}>() {
  static readonly none = Layer.succeed(CrashPoints, {
    hit: () => Effect.void,
    armable: false,
    arm: () => Effect.void,
    crashes: () => Effect.succeed(0)
  })
  static readonly armable = Layer.sync(CrashPoints, () => {
    const armed = new Map<CrashPoint, number>()
    const fired = new Map<CrashPoint, number>()
    return {
      armable: true,
      hit: (point) =>
        Effect.suspend(() => {
          const left = armed.get(point) ?? 0
          if (left <= 0) return Effect.void
          armed.set(point, left - 1)
          fired.set(point, (fired.get(point) ?? 0) + 1)
          return Effect.die(new SimulatedCrash(point))
        }),
      arm: (point, count = 1) => Effect.sync(() => void armed.set(point, count)),
      crashes: (point) => Effect.sync(() => fired.get(point) ?? 0)
    }
  })
}
