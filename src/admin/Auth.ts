/** The admin API's bearer token check: constant-time comparison with ADMIN_TOKEN. */
import { Effect, Layer, Redacted } from "effect"
import { timingSafeEqual } from "node:crypto"
import { AdminToken } from "../Config.js"
import { AdminAuth, Forbidden, Unauthorized } from "./Api.js"

export const AdminAuthLive = Layer.effect(
  AdminAuth,
  Effect.map(Effect.orDie(AdminToken), (token) =>
    AdminAuth.of({
      bearer: (given) =>
        Effect.suspend((): Effect.Effect<void, Unauthorized | Forbidden> => {
          const value = Redacted.value(given)
          if (value === "") return Effect.fail(new Unauthorized({ message: "an admin bearer token is required" }))
          const expected = Buffer.from(Redacted.value(token))
          const actual = Buffer.from(value)
          return actual.length === expected.length && timingSafeEqual(actual, expected)
            ? Effect.void
            : Effect.fail(new Forbidden({ message: "this token may not use the admin API" }))
        })
    }))
)
