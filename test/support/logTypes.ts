/** A logger that notes the `type` annotation of every line into `into` (tests that check which lines were logged). */
import { HashMap, Logger, Option } from "effect"

export const collectLogTypes = (into: Array<string>) =>
  Logger.make(({ annotations }) => {
    const type = HashMap.get(annotations, "type")
    if (Option.isSome(type)) into.push(String(type.value))
  })
