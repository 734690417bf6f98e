/**
 * Where the notifier may send a request (issue 20, docs/DECISIONS.md "Webhooks"): only `https://` URLs whose every
 * address is public — no loopback, private, link-local (cloud metadata), shared (CGNAT), documentation,
 * multicast or reserved range, in IPv4, IPv6 or IPv4 written as IPv6. A name is resolved when a delivery is
 * made, every address checked, and the connection made to the checked address (a name that resolves to a
 * public address at registration and to 127.0.0.1 later — DNS rebinding — is refused then); redirects are
 * never followed. `WEBHOOK_ALLOW_PRIVATE_URLS=true` also allows `http://` and private addresses (development,
 * tests): the default outside NODE_ENV=production, refused in it.
 */
import { Config, Context, Effect } from "effect"
import { StartupRefused } from "../Config.js"
import { lookup, Resolver } from "node:dns/promises"
import { BlockList, isIP } from "node:net"

const blocked = new BlockList()
for (const [net, bits] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.88.99.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15],
  ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4]
] as const) blocked.addSubnet(net, bits, "ipv4")
for (const [net, bits] of [
  ["::", 96], ["::ffff:0:0:0", 96], ["::1", 128], ["64:ff9b::", 96], ["64:ff9b:1::", 48], ["100::", 64], ["2001::", 23], ["2001:db8::", 32],
  ["2002::", 16], ["fc00::", 7], ["fe80::", 10], ["fec0::", 10], ["ff00::", 8]
] as const) blocked.addSubnet(net, bits, "ipv6")

/** Whether an address (v4, v6, or v4 written as v6) is outside the public internet. */
export const isPrivateAddress = (address: string): boolean => {
  const family = isIP(address)
  if (family === 0) return true
  return blocked.check(address, family === 4 ? "ipv4" : "ipv6")
}

const LOCAL_NAMES = /(^|\.)(localhost|local|internal|localdomain|home\.arpa)\.?$/i

/** The URL as registered, or why it cannot be (→ 422). Names are checked again, resolved, at delivery. */
export const checkEndpointUrl = (text: string, allowPrivate: boolean): { ok: true; url: string } | { ok: false; reason: string } => {
  if (text.length > 2048) return { ok: false, reason: "the URL is longer than 2048 characters" }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { ok: false, reason: "not an absolute URL" }
  }
  if (url.protocol !== "https:" && !(allowPrivate && url.protocol === "http:")) {
    return { ok: false, reason: allowPrivate ? "only http:// and https:// URLs" : "only https:// URLs" }
  }
  if (url.username !== "" || url.password !== "") return { ok: false, reason: "credentials in the URL are not allowed" }
  const host = hostOf(url)
  if (host === "") return { ok: false, reason: "no host" }
  if (!allowPrivate) {
    if (isIP(host) !== 0 ? isPrivateAddress(host) : LOCAL_NAMES.test(host)) {
      return { ok: false, reason: `${host} is a private, loopback, link-local or reserved address` }
    }
  }
  url.hash = ""
  return { ok: true, url: url.toString() }
}

/** The host of a URL without IPv6 brackets. */
export const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, "$1")

export interface Address {
  readonly address: string
  readonly family: 4 | 6
}

/** Name resolution for deliveries (a test swaps it to make a name resolve where it wants). */
export class WebhookResolver extends Context.Tag("WebhookResolver")<WebhookResolver, {
  readonly resolve: (host: string) => Promise<ReadonlyArray<Address>>
}>() {}

/**
 * The resolver of deliveries: DNS through c-ares (its own sockets, a timeout and one retry: a merchant's stalling
 * name server cannot hold the libuv thread pool every other endpoint's lookups share), A and AAAA at once; a name
 * DNS does not know (ENOTFOUND, ENODATA: `/etc/hosts`, `localhost`) falls back to the system's lookup.
 */
export const systemResolver = (timeoutMs: number): WebhookResolver["Type"] => {
  const dns = new Resolver({ timeout: Math.max(100, Math.floor(timeoutMs / 2)), tries: 2 })
  return {
    resolve: async (host) => {
      const [v4, v6] = await Promise.allSettled([dns.resolve4(host), dns.resolve6(host)])
      const found: Array<Address> = [
        ...(v4.status === "fulfilled" ? v4.value.map((address) => ({ address, family: 4 as const })) : []),
        ...(v6.status === "fulfilled" ? v6.value.map((address) => ({ address, family: 6 as const })) : [])
      ]
      if (found.length > 0) return found
      const codes = [v4, v6].map((r) => r.status === "rejected" ? (r.reason as { code?: string }).code : "ENODATA")
      if (codes.every((c) => c === "ENOTFOUND" || c === "ENODATA")) {
        return (await lookup(host, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))
      }
      throw new Error(`${host}: DNS ${codes.join(", ")}`)
    }
  }
}

export class UnsafeAddress extends Error {
  readonly _tag = "UnsafeAddress"
}

/** The addresses to connect to for `host` (tried in order): every address it resolves to must be public (unless allowed). */
export const resolveTarget = async (resolver: WebhookResolver["Type"], host: string, allowPrivate: boolean): Promise<ReadonlyArray<Address>> => {
  const literal = isIP(host)
  const addresses: ReadonlyArray<Address> = literal !== 0 ? [{ address: host, family: literal === 6 ? 6 : 4 }] : await resolver.resolve(host)
  if (addresses.length === 0) throw new Error(`${host} resolves to no address`)
  if (!allowPrivate) {
    const unsafe = addresses.find((a) => isPrivateAddress(a.address))
    if (unsafe !== undefined) throw new UnsafeAddress(`${host} resolves to ${unsafe.address}, a private, loopback, link-local or reserved address`)
  }
  return addresses
}

/** WEBHOOK_ALLOW_PRIVATE_URLS: default true outside production; true in production refuses to start. */
export const AllowPrivateUrls = Effect.gen(function*() {
  const production = (yield* Config.string("NODE_ENV").pipe(Config.withDefault(""))) === "production"
  const allow = yield* Config.boolean("WEBHOOK_ALLOW_PRIVATE_URLS").pipe(Config.withDefault(!production))
  return { production, allow }
})

/** Before the api or the notifier starts: private URLs allowed in production → refused; outside it → a warning. */
export const checkWebhookUrlPolicy = (role: string) =>
  Effect.gen(function*() {
    const { allow, production } = yield* Effect.orDie(AllowPrivateUrls)
    if (!allow) return
    if (production) {
      const reason = "WEBHOOK_ALLOW_PRIVATE_URLS=true with NODE_ENV=production"
      yield* Effect.logError(`refusing to start the ${role} role: ${reason}; webhooks could reach internal addresses`).pipe(
        Effect.annotateLogs({ type: "STARTUP_REFUSED", role, reason })
      )
      return yield* Effect.fail(new StartupRefused(`${reason}: unset it (webhook URLs must be public https:// URLs in production)`))
    }
    yield* Effect.logWarning("webhook URLs may be http:// and private addresses (development); set NODE_ENV=production outside it").pipe(
      Effect.annotateLogs({ type: "STARTUP_WARNING", role })
    )
  })
