/**
 * Standard Webhooks (v1.0.0) signing: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the
 * key being the base64 after `whsec_`. Several signatures (a rotation's old and new secret) are space-separated,
 * as the spec allows; a receiver accepts the request when any of them verifies. Receivers (and our tests) verify
 * with the spec's own library (`standardwebhooks`), never with this module.
 */
import { createHmac, randomBytes } from "node:crypto"

export const SECRET_PREFIX = "whsec_"

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes. */
export const newSecret = (): string => `${SECRET_PREFIX}${randomBytes(32).toString("base64")}`

const keys = new Map<string, Buffer>()
const keyOf = (secret: string): Buffer => {
  let key = keys.get(secret)
  if (key === undefined) {
    key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64")
    if (keys.size > 10_000) keys.clear()
    keys.set(secret, key)
  }
  return key
}

/** The `webhook-signature` header of one attempt: one `v1,` signature per secret, space-separated. */
export const signatureHeader = (secrets: ReadonlyArray<string>, id: string, timestamp: number, body: string): string =>
  secrets.map((secret) => `v1,${createHmac("sha256", keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest("base64")}`).join(" ")
