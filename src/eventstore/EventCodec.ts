/**
 * How events are stored: type, schema version and JSON data. Old shapes are upcast on read, one version
 * step at a time; a stored event is never rewritten. An event written by a newer program is a defect here.
 */
import { Schema } from "effect"
import { currencyExponents, MINOR_LIMIT, Money } from "../domain/Money.js"
import {
  Attempt,
  DueAt,
  EventId,
  isLowerCaseUuid,
  NullableReason,
  OrderEvent,
  type OrderEventType,
  OrderId,
  PaymentId,
  Reason,
  REASON_MAX_LENGTH,
  RefundId,
  UserId
} from "../domain/Order.js"

export const schemaVersions: Readonly<Record<OrderEventType, number>> = {
  OrderPlaced: 1,
  PaymentRequested: 1,
  PaymentRetryScheduled: 1,
  OrderPaid: 1,
  OrderFailed: 1,
  OrderCancelled: 1,
  RefundRequested: 1,
  RefundRetryScheduled: 1,
  RefundSucceeded: 1,
  RefundFailed: 1
}

export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>

/** upcasters[type][v] turns version v of the type's data into version v + 1. None yet: every type is at v1. */
export const upcasters: Partial<Record<OrderEventType, Readonly<Record<number, Upcaster>>>> = {}

export interface EncodedEvent {
  readonly type: OrderEventType
  readonly schemaVersion: number
  readonly data: Record<string, unknown>
}

const encode = Schema.encodeSync(OrderEvent)
const decode = Schema.decodeUnknownSync(OrderEvent)

/**
 * The encoding of one kind of field, with the checks of its schema: `invalid` when the value breaks one of
 * them. The kinds are the events' field schemas, by identity; an event type with a field of another schema
 * has no fast encoding.
 */
const invalid = Symbol("invalid")
type FieldEncoding = (value: unknown) => unknown
const uuid: FieldEncoding = (v) => (typeof v === "string" && isLowerCaseUuid(v) ? v : invalid)
const date: FieldEncoding = (v) => (v instanceof Date && !Number.isNaN(v.getTime()) ? v.toISOString() : invalid)
const reason: FieldEncoding = (v) => (typeof v === "string" && v.length <= REASON_MAX_LENGTH ? v : invalid)
const fieldEncodings = new Map<unknown, FieldEncoding>([
  [EventId, uuid],
  [OrderId, uuid],
  [UserId, uuid],
  [PaymentId, uuid],
  [RefundId, uuid],
  [Schema.Date, date],
  [DueAt, (v) => (v === null ? null : date(v))],
  [Reason, reason],
  [NullableReason, (v) => (v === null ? null : reason(v))],
  [Attempt, (v) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : invalid)],
  [Money, (v) =>
    v instanceof Money && typeof v.minor === "bigint" && v.minor > 0n && v.minor < MINOR_LIMIT &&
      currencyExponents.has(v.currency)
      ? { minor: v.minor.toString(), currency: v.currency }
      : invalid]
])

/** Per event type: its class and its fields' encodings in the order Schema writes them (`_tag` last). */
const fastEncodings = new Map(OrderEvent.members.flatMap((member) => {
  const fields = Object.entries(member.fields).filter(([name]) => name !== "_tag")
  const encodings = fields.map(([name, schema]) => [name, fieldEncodings.get(schema)] as const)
  return encodings.every(([, encoding]) => encoding !== undefined)
    ? [[member.identifier, { member, fields: encodings as ReadonlyArray<readonly [string, FieldEncoding]> }] as const]
    : []
}))

/**
 * An event's data as `Schema.encodeSync(OrderEvent)` writes it, without its machinery (~7 µs and ~14 KiB per
 * event on every append: issue 24) — or `undefined` when a field fails its schema's check or the type has no
 * fast encoding, for the schema to answer. property-tests/p7-p8-schemas-money.test.ts holds the two to the same
 * output, and this to refusing whatever the schema refuses.
 */
export const encodeEventDataFast = (event: OrderEvent): Record<string, unknown> | undefined => {
  const fast = fastEncodings.get(event._tag)
  if (fast === undefined || !(event instanceof fast.member)) return undefined
  const data: Record<string, unknown> = {}
  for (const [name, encoding] of fast.fields) {
    const value = encoding((event as unknown as Record<string, unknown>)[name])
    if (value === invalid) return undefined
    data[name] = value
  }
  data._tag = event._tag
  return data
}

/** The event types `encodeEventDataFast` encodes (every one today). */
export const fastEncodedTypes: ReadonlyArray<string> = [...fastEncodings.keys()]

/** The schema's own encoding: the reference, and the answer for what the fast one leaves to it. */
export const encodeEventDataBySchema = (event: OrderEvent): Record<string, unknown> =>
  encode(event) as unknown as Record<string, unknown>

/** An event's stored data; an invalid event fails here as the schema fails it. */
export const encodeEventData = (event: OrderEvent): Record<string, unknown> =>
  encodeEventDataFast(event) ?? encodeEventDataBySchema(event)

export const encodeEvent = (event: OrderEvent): EncodedEvent => ({
  type: event._tag,
  schemaVersion: schemaVersions[event._tag],
  data: encodeEventData(event)
})

export interface SchemaRegistry {
  readonly versions: Readonly<Record<OrderEventType, number>>
  readonly upcasters: Partial<Record<OrderEventType, Readonly<Record<number, Upcaster>>>>
}

/** Decode stored data of any known version: upcast it step by step to the current version, then decode. */
export const decodeEventWith = (registry: SchemaRegistry) => (type: string, schemaVersion: number, data: unknown): OrderEvent => {
  const current = registry.versions[type as OrderEventType]
  if (current === undefined) throw new Error(`unknown event type ${type}`)
  if (schemaVersion > current) throw new Error(`${type} v${schemaVersion} is newer than this program (v${current})`)
  let upcast = data as Record<string, unknown>
  for (let v = schemaVersion; v < current; v++) {
    const step = registry.upcasters[type as OrderEventType]?.[v]
    if (step === undefined) throw new Error(`no upcaster for ${type} v${v}`)
    upcast = step(upcast)
  }
  return decode({ ...upcast, _tag: type })
}

export const decodeEvent = decodeEventWith({ versions: schemaVersions, upcasters })
