/**
 * Topic and dead-letter checks: each order's events on one partition in version order with every event
 * published, hostile messages parked with their exact bytes, and the dead_letters table naming the same
 * source messages as the dead-letter topic.
 */
import { check, type CheckInput, type CheckResult } from "./common.js"

// 7. topic: each order's events on one partition, in version order (duplicates allowed), every event there
export const topicOrder = ({ db, seen }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  const perOrder = new Map<string, { partitions: Set<number>; versions: Array<number> }>()
  const onTopic = new Set<string>()
  let unreadable = 0
  for (const m of seen.topic) {
    if (m.headers["chaos-hostile"]) continue
    let env: any
    try {
      env = JSON.parse(m.value?.toString() ?? "")
    } catch {
      unreadable++
      continue
    }
    if (typeof env?.orderId !== "string" || typeof env?.version !== "number") {
      unreadable++
      continue
    }
    if (m.key?.toString() !== env.orderId) failures.push(`message at ${m.partition}/${m.offset}: key ${m.key?.toString()} is not its order ${env.orderId}`)
    onTopic.add(env.eventId)
    const p = perOrder.get(env.orderId) ?? { partitions: new Set(), versions: [] }
    p.partitions.add(m.partition)
    p.versions.push(env.version)
    perOrder.set(env.orderId, p)
  }
  for (const [id, p] of perOrder) {
    if (p.partitions.size > 1) failures.push(`${id} on partitions ${[...p.partitions].join(",")}`)
    // first occurrences must come in version order (a later duplicate of an earlier version is allowed)
    let max = 0
    for (const v of p.versions) {
      if (v > max + 1) {
        failures.push(`${id}: version ${v} reached the topic before version ${max + 1} (order ${p.versions.join(",")})`)
        break
      }
      max = Math.max(max, v)
    }
  }
  const missing = db.events.filter((e) => !onTopic.has(e.event_id))
  for (const e of missing.slice(0, 50)) failures.push(`${e.stream_id} v${e.version} ${e.type} (event ${e.event_id}) is not on the topic`)
  if (missing.length > 50) failures.push(`${missing.length} events in all are not on the topic`)
  if (!seen.topicComplete) failures.push("the topic could not be read to its end within the time limit")
  return check("topic: per order one partition, version order, every event published", failures,
    `${seen.topic.length} messages read (${unreadable} not envelopes besides the hostile ones), ${perOrder.size} orders, ${missing.length} events missing`,
    { messages: seen.topic.length, orders: perOrder.size, missing: missing.length, outOfOrder: failures.filter((f) => f.includes("before version")).length },
    failures.map((f) => f.split(" ")[0]!.replace(/:$/, "")))
}

// 12. hostile messages parked with their exact bytes
export const hostileParked = ({ db, seen }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  for (const h of seen.hostile) {
    const dl = db.deadLetters.find((d) => d.topic === seen.eventsTopic && d.partition === h.partition && d.offset === h.offset)
    if (!dl) failures.push(`${h.partition}/${h.offset} ${h.variant} (${h.bytes.length} bytes, key ${h.key}) is not parked`)
    else if (dl.value_bytes === null || !Buffer.from(dl.value_bytes).equals(h.bytes)) {
      failures.push(`${h.partition}/${h.offset} ${h.variant}: parked, but its value is not the message's bytes (${h.bytes.length} bytes sent, ${dl.value_bytes?.length ?? "null"} stored)`)
    }
  }
  return check("hostile messages parked with their bytes", failures, `${seen.hostile.length} injected, ${seen.hostile.length - failures.length} parked intact`,
    { injected: seen.hostile.length, notParked: failures.filter((f) => f.includes("not parked")).length, altered: failures.filter((f) => f.includes("not the message")).length },
    seen.hostile.filter((h) => failures.some((f) => f.startsWith(`${h.partition}/${h.offset} `))).map((h) => h.key))
}

// 13. no dead letter lost: the table and the dead-letter topic name the same source messages
export const deadLettersKept = ({ db, seen }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  const inTable = new Set(db.deadLetters.map((d) => `${d.topic}/${d.partition}/${d.offset}`))
  const onTopic = new Set(seen.dlqTopic.map((m) => m.headers["dlq-source"]).filter((s): s is string => !!s))
  for (const s of inTable) if (!onTopic.has(s)) failures.push(`${s} parked in the table but not on the dead-letter topic`)
  for (const s of onTopic) if (!inTable.has(s)) failures.push(`${s} on the dead-letter topic but not in the table`)
  return check("no dead letter lost (table ⇔ topic)", failures, `${db.deadLetters.length} rows, ${seen.dlqTopic.length} messages on the dead-letter topic`,
    { rows: db.deadLetters.length, dlqMessages: seen.dlqTopic.length })
}
