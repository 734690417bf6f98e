/** A logger that notes the `type` of every line into `into` (tests that check which lines were logged): an
 * annotation or a field its message carries (src/observability/Logging.ts `withFields`). */
import { Logger } from "effect"
import { lineFields } from "../../src/observability/Logging.js"

export const collectLogTypes = (into: Array<string>) =>
  Logger.make(({ annotations, message }) => {
    const type = lineFields(annotations, message).type
    if (type !== undefined) into.push(String(type))
  })
