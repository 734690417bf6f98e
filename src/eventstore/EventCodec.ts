/**
 * How events are stored: type, schema version and JSON data. Old shapes are upcast on read, one version
 * step at a time; a stored event is never rewritten. An event written by a newer program is a defect here.
 */
import { Schema } from "effect"
import { OrderEvent, type OrderEventType } from "../domain/Order.js"

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

export const encodeEvent = (event: OrderEvent): EncodedEvent => ({
  type: event._tag,
  schemaVersion: schemaVersions[event._tag],
  data: encode(event) as unknown as Record<string, unknown>
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
