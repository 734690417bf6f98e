/**
 * The outbox relay (docs/ARCHITECTURE.md "Outbox relay"): publishes committed outbox rows to Kafka and marks
 * them published.
 *
 * One leader at a time. Leadership is a session-level advisory lock on a connection the leader holds while it
 * leads (Outbox.lead); standbys try the lock every RELAY_STANDBY_RETRY_MS. A term ends when any statement on
 * that connection fails (the session, hence the lock, may be gone), when a send fails, or at shutdown; the
 * relay then releases the lock (if its session still lives) and competes again like a standby.
 *
 * A batch costs one statement (Outbox.markAndRead: mark the acked batch + read the next). A large batch overlaps
 * the send: while batch k is on its way to the broker, the statement marks batch k-1 and reads batch k+1; a
 * small one is sent first and then marked by the statement that reads the next (nothing in flight then).
 * Why that is safe:
 * - A key's events leave in version order. Sends are sequential: batch k+1 is sent only after batch k was
 *   acked, and a batch's messages are sent in position order. Within one stream positions grow with versions
 *   (version n+1 can only be inserted after version n committed), and every read returns a prefix, in position
 *   order, of the committed unpublished rows not in flight; so a read that holds version n+1 of a key holds
 *   version n too, unless n is in flight or already acked — sent before. A new leader starts from the rows not
 *   marked, which contain everything not acked: on the wire a key's first copies stay in version order, and
 *   duplicates (resent after a crash or failover) are absorbed by the consumers' inbox.
 * - No row is marked before its ack: `acked` holds only the positions of a batch whose send resolved
 *   (acks = all, idempotent producer), and it is marked by the statement that follows.
 * - No two leaders sending: every send starts right after a statement on the lock's connection succeeded
 *   (the lock was held then); when the connection dies the next statement fails and the old leader stops
 *   before sending anything more. What cannot be taken back is a send already under way when the lock was
 *   lost: it may overlap the new leader's first sends, which only duplicates rows (none of them was marked).
 * - A crash anywhere (the named crash points, a send error) ends the term; the in-memory pipeline is thrown
 *   away and the next term starts again from what the database says is unpublished.
 * Woken by OutboxSignal on commit; RELAY_POLL_MS is the slow safety net (and the idle leader's heartbeat).
 */
import { Cause, Config, Duration, Effect, Fiber, Layer, LogLevel, Metric, Option } from "effect"
import { CrashPoints, isSimulatedCrash } from "../CrashPoints.js"
import { Kafka } from "../kafka/Kafka.js"
import { linksFromMetadata, traced } from "../observability/Tracing.js"
import { Outbox, type OutboxLeader, type OutboxMessage } from "./Outbox.js"
import { OutboxSignal } from "./OutboxSignal.js"

export const RelayConfig = Config.all({
  batchSize: Config.integer("RELAY_BATCH_SIZE").pipe(Config.withDefault(500)),
  pollMs: Config.integer("RELAY_POLL_MS").pipe(Config.withDefault(1000)),
  standbyMs: Config.integer("RELAY_STANDBY_RETRY_MS").pipe(Config.withDefault(1000)),
  /**
   * After sending a small batch (under a tenth of RELAY_BATCH_SIZE; an empty one too, i.e. before the
   * statement that only marks the last acked batch), wait this long before the statement that marks it and
   * reads the next, so that it reads what those milliseconds committed: the commits of those milliseconds
   * leave together, in one statement and one produce request, rather than one round trip pair each (issue 24:
   * a produce request costs the same for 1 event as for 50). The small batch itself is not held up. 0 = never wait.
   */
  lingerMs: Config.integer("RELAY_LINGER_MS").pipe(Config.withDefault(5))
})

export const eventsPublished = Metric.counter("relay_events_published_total", {
  description: "order events published to Kafka by the relay",
  incremental: true
})

export const relayLeader = Metric.gauge("relay_leader", {
  description: "1 while this process's relay holds the leadership lock, else 0 (relays in this process that lead)"
})

export const leadershipLost = Metric.counter("relay_leadership_lost_total", {
  description: "relay leadership terms that ended (errors, crashes, shutdown)",
  incremental: true
})

export const relayErrors = Metric.counter("relay_errors_total", {
  description: "relay failures: a term ended by an error, or the lock could not be tried",
  incremental: true
})

const describe = (cause: Cause.Cause<unknown>) => Cause.pretty(cause).slice(0, 500)

export class Relay extends Effect.Service<Relay>()("Relay", {
  effect: Effect.gen(function*() {
    const outbox = yield* Outbox
    const kafka = yield* Kafka
    const crash = yield* CrashPoints
    const { batchSize } = yield* RelayConfig
    const small = Math.max(1, Math.floor(batchSize / 10))
    yield* Metric.incrementBy(eventsPublished, 0)
    yield* Metric.incrementBy(leadershipLost, 0)
    yield* Metric.incrementBy(relayErrors, 0)
    yield* Metric.incrementBy(relayLeader, 0)
    let leading = false

    /** One batch to the broker, in position order; resolves once every message is acked. */
    const send = (events: ReadonlyArray<OutboxMessage>) =>
      Effect.gen(function*() {
        const messages = events.map((e) => e.message)
        yield* crash.hit("relay.beforeSend")
        // in two requests only where a crash between them can be armed (tests): one produce request otherwise
        const half = crash.armable ? Math.ceil(messages.length / 2) : messages.length
        yield* kafka.send(kafka.topics.orderEvents, messages.slice(0, half))
        yield* crash.hit("relay.midBatch")
        if (half < messages.length) yield* kafka.send(kafka.topics.orderEvents, messages.slice(half))
        yield* crash.hit("relay.afterSendBeforeMark")
      }).pipe(traced("Relay.publish", {
        kind: "producer",
        root: true,
        links: linksFromMetadata(events.map((e) => e.metadata)),
        attributes: { "messaging.destination.name": kafka.topics.orderEvents, "messaging.batch.message_count": events.length }
      }))

    /**
     * Publish until nothing is left; the number of rows marked. Fails (ending the term) on any error. A batch of
     * RELAY_BATCH_SIZE / 10 or more is sent while the next statement marks the one before and reads ahead; a
     * smaller one is sent, then `linger` (the relay role's, RELAY_LINGER_MS) runs, then one statement marks it
     * and reads the next.
     */
    const drain = (leader: OutboxLeader, linger: Effect.Effect<void> = Effect.void) =>
      Effect.gen(function*() {
        let marked = 0
        let acked: ReadonlyArray<bigint> = []
        let ready = yield* leader.markAndRead([], [], batchSize)
        while (ready.length > 0 || acked.length > 0) {
          const inFlight = ready.map((e) => e.position)
          if (ready.length < small) {
            // a small batch (or none, the last mark): sent at once, then ONE statement marks it with what was
            // acked before and reads the next — what the send and the linger let commit. No read-ahead beside
            // the send: at rates that make small batches it finds nothing, and cost a statement and a linger
            // per wake-up (issue 24: ~3 statements per event at 10 orders/s)
            if (ready.length > 0) yield* send(ready)
            yield* linger
            const done = acked.concat(inFlight)
            const next = yield* leader.markAndRead(done, [], batchSize)
            yield* Metric.incrementBy(eventsPublished, done.length)
            marked += done.length
            acked = []
            ready = next
            continue
          }
          // mark what was acked and read ahead, concurrently with the send
          const statement = yield* Effect.fork(leader.markAndRead(acked, inFlight, batchSize))
          yield* send(ready).pipe(Effect.onError(() => Fiber.interrupt(statement)))
          const next = yield* Fiber.join(statement)
          yield* Metric.incrementBy(eventsPublished, acked.length)
          marked += acked.length
          acked = inFlight
          ready = next
        }
        return marked
      })

    /** Leadership for the scope (None: another relay leads), with its log lines and gauge. */
    const lead = Effect.gen(function*() {
      const leader = yield* outbox.lead.pipe(Effect.tapErrorCause((cause) =>
        Effect.zipRight(
          Metric.increment(relayErrors),
          Effect.logWarning("relay could not try the leadership lock").pipe(
            Effect.annotateLogs({ type: "PROCESSING_ERROR", role: "relay", error: describe(cause) })
          )
        )
      ))
      if (Option.isNone(leader)) return leader
      leading = true
      yield* Metric.increment(relayLeader)
      yield* Effect.logInfo("relay leadership acquired").pipe(Effect.annotateLogs({ type: "LEADER_ACQUIRED", role: "relay" }))
      yield* Effect.addFinalizer((exit) =>
        Effect.gen(function*() {
          leading = false
          yield* Metric.incrementBy(relayLeader, -1)
          yield* Metric.increment(leadershipLost)
          if (exit._tag === "Success" || Cause.isInterruptedOnly(exit.cause)) {
            return yield* Effect.logInfo("relay leadership released").pipe(
              Effect.annotateLogs({ type: "LEADER_LOST", role: "relay", reason: "released" })
            )
          }
          yield* Metric.increment(relayErrors)
          const simulated = isSimulatedCrash(Cause.squash(exit.cause))
          // (a simulated crash stands for a process death, and is frequent in property runs: Info, not Warning)
          yield* Effect.logWithLevel(
            simulated ? LogLevel.Info : LogLevel.Warning,
            simulated ? "relay crashed (simulated), leadership lost" : "relay leadership lost"
          ).pipe(
            Effect.annotateLogs({ type: "LEADER_LOST", role: "relay", reason: simulated ? "simulated crash" : "error", error: describe(exit.cause) })
          )
        })
      )
      return leader
    })

    /**
     * One leadership term that publishes until nothing is left, then releases the lock (tests and property
     * runs drive the relay with it): the rows published, 0 when there were none or another relay leads.
     */
    const publishBatch = Effect.scoped(
      Effect.flatMap(lead, Option.match({ onNone: () => Effect.succeed(0), onSome: drain }))
    )

    return { publishBatch, lead, drain, isLeader: Effect.sync(() => leading) } as const
  })
}) {}

/**
 * The relay role: try to lead; as leader publish while there is work, then wait for a wake (or the poll),
 * until the term ends; as standby retry the lock every RELAY_STANDBY_RETRY_MS. After an error, back off.
 */
export const RelayLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const relay = yield* Relay
    const signal = yield* OutboxSignal
    const { lingerMs, pollMs, standbyMs } = yield* RelayConfig
    // wall-clock, not Effect's Clock: a batching knob, which a test's TestClock must not hold up
    const linger = lingerMs <= 0 ? Effect.void : Effect.async<void>((resume) => {
      const timer = setTimeout(() => resume(Effect.void), lingerMs)
      return Effect.sync(() => clearTimeout(timer))
    })
    const term = (leader: OutboxLeader) =>
      Effect.forever(Effect.zipRight(relay.drain(leader, linger), signal.await(Duration.millis(pollMs))))
    const attempt = Effect.scoped(
      Effect.flatMap(relay.lead, Option.match({ onNone: () => Effect.sleep(Duration.millis(standbyMs)), onSome: term }))
    ).pipe(
      // the end of a term was logged as LEADER_LOST, a failed try of the lock as PROCESSING_ERROR
      Effect.catchAllCause(() => Effect.sleep(Duration.millis(200)))
    )
    yield* Effect.logInfo("relay started").pipe(Effect.annotateLogs({ type: "STARTUP", role: "relay" }))
    yield* Effect.forkScoped(Effect.forever(attempt))
  })
)
