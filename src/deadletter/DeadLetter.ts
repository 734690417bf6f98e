/**
 * A dead letter as the operator API shows it. Kept apart from DeadLetters.ts (its table and the broker) so the
 * API definition, and the client built from it, import no database or broker code.
 */
import { Schema } from "effect"

export const DeadLetter = Schema.Struct({
  id: Schema.String,
  consumer: Schema.String,
  topic: Schema.String,
  partition: Schema.Int,
  offset: Schema.String,
  /** Printable previews of the key, value and headers (control characters escaped, long values cut). */
  key: Schema.NullOr(Schema.String),
  value: Schema.String,
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  /** The exact bytes of the value, base64 (null: the message had no value); replay sends these. */
  valueBase64: Schema.NullOr(Schema.String),
  valueBytes: Schema.Int,
  error: Schema.String,
  attempts: Schema.Int,
  status: Schema.Literal("parked", "replayed", "discarded"),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type DeadLetter = typeof DeadLetter.Type
