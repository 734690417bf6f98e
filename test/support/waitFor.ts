/** Poll an effect until its value passes `until` (real time: the system runs on real Kafka and PostgreSQL). */
import { Duration, Effect } from "effect"

export const waitFor = <A, E, R>(
  what: string,
  poll: Effect.Effect<A, E, R>,
  until: (a: A) => boolean,
  timeout: Duration.DurationInput = Duration.seconds(20)
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(timeout)
    let last: A
    do {
      last = yield* poll
      if (until(last)) return last
      yield* Effect.sleep(Duration.millis(50))
    } while (Date.now() < deadline)
    return yield* Effect.dieMessage(`timed out waiting for ${what}; last value: ${JSON.stringify(last, (_, v) => (typeof v === "bigint" ? String(v) : v))}`)
  })
