/**
 * A fair counting semaphore: waiters get permits first come, first served, one waiter woken per released
 * permit, the permit handed over directly (never up for grabs in between).
 *
 * Why not Effect's `Semaphore`: in effect 3.22 (`internal/effect/circular.ts`), a release wakes *every* waiter
 * while a permit is free; all but one find it taken again and wait anew, each such round nesting one more
 * `asyncInterrupt` frame on the waiter's stack. With a backlog — thousands of payments waiting for the
 * gateway's 64 connections — that is O(waiters) work per release and stacks that grow without bound: the
 * split benchmark's pipeline process ran out of heap at 150 orders/s (fibers with 700+ frames each;
 * docs/PERFORMANCE.md, docs/DECISIONS.md "A fair semaphore of our own"). Order actors' mailboxes (one permit)
 * had the same shape under a hammered order.
 */
import { Effect } from "effect"

export interface Permits {
  /** Run `self` holding one permit; waiting is interruptible, and an interrupted waiter takes nothing. */
  readonly withPermit: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Permits free right now (tests, metrics). */
  readonly free: () => number
  /** Fibers waiting for a permit. */
  readonly waiting: () => number
}

export const makePermits = (permits: number): Permits => {
  let free = permits
  /** Insertion-ordered: the first waiter is the oldest. */
  const waiters = new Set<() => void>()

  const release = () => {
    const next = waiters.values().next()
    if (next.done === true) free++
    else {
      waiters.delete(next.value)
      next.value()
    }
  }

  const take = Effect.async<void>((resume) => {
    if (free > 0 && waiters.size === 0) {
      free--
      resume(Effect.void)
      return
    }
    const waiter = () => resume(Effect.void)
    waiters.add(waiter)
    // interrupted while waiting: either still queued (leave), or handed a permit already (give it back)
    return Effect.sync(() => {
      if (!waiters.delete(waiter)) release()
    })
  })

  const giveBack = Effect.sync(release)

  return {
    withPermit: (self) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          // a free permit and nobody before us: taken here, without the asynchronous wait (an order actor's
          // mailbox is free for nearly every command)
          if (free > 0 && waiters.size === 0) {
            free--
            return Effect.ensuring(restore(self), giveBack)
          }
          return Effect.zipRight(restore(take), Effect.ensuring(restore(self), giveBack))
        })
      ),
    free: () => free,
    waiting: () => waiters.size
  }
}
