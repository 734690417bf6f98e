/** New ids. Order ids are UUIDv7 (time-ordered: id order is creation order, and the B-tree appends). */
import { createHash, randomBytes, randomUUID } from "node:crypto"

export const uuidv4 = (): string => randomUUID()

// random bytes drawn 4 KiB at a time: one call into the CSPRNG per 256 ids instead of one per id
let pool = Buffer.alloc(0)
let offset = 0
const random16 = (): Buffer => {
  if (offset + 16 > pool.length) {
    pool = randomBytes(4096)
    offset = 0
  }
  const bytes = Buffer.from(pool.subarray(offset, offset + 16))
  offset += 16
  return bytes
}

export const uuidv7 = (now: number = Date.now()): string => {
  const bytes = random16()
  bytes.writeUIntBE(now, 0, 6)
  bytes[6] = (bytes[6]! & 0x0f) | 0x70
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * A UUID derived from another id and a label (name-based, v5 layout over SHA-1): the same inputs give the
 * same id in every process, so a redelivered message issues the same command and payment ids again.
 */
export const deriveId = (base: string, label: string): string => {
  const bytes = createHash("sha1").update(`${base}/${label}`).digest().subarray(0, 16)
  bytes[6] = (bytes[6]! & 0x0f) | 0x50
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
