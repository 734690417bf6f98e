/** The dead-letter endpoints of the admin API: list, get, replay, discard (each replay/discard logged). */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Option } from "effect"
import type { DeadLetter } from "../deadletter/DeadLetter.js"
import { DeadLetters } from "../deadletter/DeadLetters.js"
import { Api } from "../http/Api.js"
import { DeadLetterNotFound, DeadLetterNotParked } from "./Api.js"
import { answerStoreErrors } from "../http/Failures.js"
import type { StoreError } from "../Infrastructure.js"

export const DeadLettersHttpLive = HttpApiBuilder.group(Api, "admin", (handlers) =>
  Effect.gen(function*() {
    const deadLetters = yield* DeadLetters
    const notFound = (id: number) => new DeadLetterNotFound({ id: String(id), message: `dead letter ${id} not found` })
    const get = (id: number) =>
      Effect.flatMap(deadLetters.get(String(id)), Option.match({
        onNone: () => Effect.fail(notFound(id)),
        onSome: Effect.succeed
      }))
    /** A replay or discard; when nothing changed, why: no such dead letter (404), or not parked (409). */
    const changed = (id: number, change: (id: string) => Effect.Effect<Option.Option<DeadLetter>, StoreError>) =>
      Effect.flatMap(change(String(id)), Option.match({
        onSome: Effect.succeed,
        onNone: () =>
          Effect.flatMap(get(id), (found) =>
            Effect.fail(new DeadLetterNotParked({ id: found.id, message: `dead letter ${id} is ${found.status}` })))
      }))
    const logged = (message: string, type: string) => (d: DeadLetter) =>
      Effect.logInfo(message).pipe(Effect.annotateLogs({ type, id: d.id, orderId: d.key }))
    return handlers
      .handle("listDeadLetters", ({ urlParams }) => answerStoreErrors(deadLetters.list(urlParams.status, urlParams.limit ?? 100)))
      .handle("getDeadLetter", ({ path }) => answerStoreErrors(get(path.id)))
      .handle("replayDeadLetter", ({ path }) =>
        changed(path.id, deadLetters.replay).pipe(Effect.tap(logged("dead letter replayed", "DLQ_REPLAY")), answerStoreErrors))
      .handle("discardDeadLetter", ({ path }) =>
        changed(path.id, deadLetters.discard).pipe(Effect.tap(logged("dead letter discarded", "DLQ_DISCARD")), answerStoreErrors))
  }))
