/** Durations in the webhook settings: `250ms`, `5s`, `5m`, `2h`, `5d`, or a bare number of milliseconds. */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export const parseDuration = (text: string): number | undefined => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  return m === null ? undefined : Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "ms"]!)
}

/** A comma list of durations (WEBHOOK_RETRY_SCHEDULE), or undefined when any is not one. */
export const parseSchedule = (text: string): ReadonlyArray<number> | undefined => {
  const parts = text.split(",").map(parseDuration)
  return parts.length === 0 || parts.some((p) => p === undefined) ? undefined : parts as ReadonlyArray<number>
}
