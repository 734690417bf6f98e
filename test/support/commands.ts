/** Random commands on one order, from a small pool of payment ids so that duplicates and races happen. */
import type { OrderCommand, OrderId, PaymentId } from "../../src/domain/Order.js"
import { cmd } from "./fixtures.js"

const payments = [
  "44444444-4444-4444-8444-444444444441",
  "44444444-4444-4444-8444-444444444442",
  "44444444-4444-4444-8444-444444444443"
] as unknown as ReadonlyArray<PaymentId>

const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(Math.random() * items.length)]!

export const randomCommand = (orderId: string): OrderCommand => {
  const o = orderId as OrderId
  switch (pick(["start", "start", "succeed", "fail", "cancel"] as const)) {
    case "start":
      return cmd.start(pick(payments), o)
    case "succeed":
      return cmd.succeed(pick(payments), o)
    case "fail":
      return cmd.fail(pick(payments), o)
    case "cancel":
      return cmd.cancel(o)
  }
}
