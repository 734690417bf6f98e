/**
 * The suite's own Kafka client: an observer that remembers messages of the order topic (so the nemesis can
 * republish exact copies of earlier ones), a raw producer for hostile bytes, and a reader of whole topics for
 * the checker.
 */
import { type Consumer, Kafka, type KafkaMessage, logLevel, type Producer } from "kafkajs"

export interface SeenMessage {
  readonly partition: number
  readonly offset: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Record<string, string>
}

const headersOf = (m: KafkaMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v === undefined) continue
    out[k] = Array.isArray(v) ? v.map(String).join(",") : v.toString()
  }
  return out
}

export const kafkaClient = (brokers: string, clientId: string) =>
  new Kafka({
    clientId,
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 10_000,
    retry: { retries: 3, initialRetryTime: 300, maxRetryTime: 3000 }
  })

/** Remembers the order topic's real messages (JSON envelopes with an eventId), for duplicate republish. */
export class Observer {
  readonly seen: Array<SeenMessage> = []
  private consumer: Consumer | null = null
  constructor(private readonly kafka: Kafka, private readonly topic: string, private readonly groupId: string) {}

  async start(): Promise<void> {
    const consumer = this.kafka.consumer({ groupId: this.groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 500, retry: { retries: 10 } })
    this.consumer = consumer
    await consumer.connect()
    await consumer.subscribe({ topic: this.topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (this.seen.length >= 20_000) return
        const text = message.value?.toString() ?? ""
        if (!text.startsWith("{") || !text.includes("\"eventId\"")) return
        this.seen.push({ partition, offset: message.offset, key: message.key, value: message.value, headers: headersOf(message) })
      }
    })
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined)
  }
}

export class Injector {
  private producer: Producer
  private connected = false
  constructor(kafka: Kafka) {
    this.producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 2 } })
  }
  /** Connect ahead of the first fault, so that a hostile message lands while orders still flow behind it. */
  async connect(): Promise<void> {
    if (!this.connected) {
      await this.producer.connect()
      this.connected = true
    }
  }
  /** Send one raw message; its partition and offset, or the error. */
  async send(topic: string, key: Buffer | string | null, value: Buffer, headers: Record<string, string>): Promise<{ partition: number; offset: string } | { error: string }> {
    try {
      if (!this.connected) {
        await this.producer.connect()
        this.connected = true
      }
      const [meta] = await this.producer.send({ topic, acks: -1, timeout: 5000, messages: [{ key, value, headers }] })
      return { partition: meta!.partition, offset: meta!.baseOffset! }
    } catch (e) {
      return { error: String(e).slice(0, 300) }
    }
  }
  async stop(): Promise<void> {
    if (this.connected) await this.producer.disconnect().catch(() => undefined)
  }
}

/** Read every message of the given topics up to their current end (a fresh group, from the beginning). */
export const readTopics = async (kafka: Kafka, topics: ReadonlyArray<string>, groupId: string, timeoutMs: number) => {
  const admin = kafka.admin()
  await admin.connect()
  const ends = new Map<string, Map<number, bigint>>()
  for (const topic of topics) {
    const offsets = await admin.fetchTopicOffsets(topic)
    ends.set(topic, new Map(offsets.map((o) => [o.partition, BigInt(o.high)])))
  }
  await admin.disconnect()
  const out = new Map<string, Array<SeenMessage>>(topics.map((t) => [t, []]))
  const last = new Map<string, bigint>()
  const remaining = () => {
    let n = 0
    for (const [topic, parts] of ends) {
      for (const [p, high] of parts) {
        if ((last.get(`${topic}/${p}`) ?? -1n) + 1n < high) n++
      }
    }
    return n
  }
  let complete = remaining() === 0
  if (!complete) {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 300 })
    await consumer.connect()
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true })
    let resolveDone: () => void = () => undefined
    const done = new Promise<void>((r) => (resolveDone = r))
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        out.get(topic)!.push({ partition, offset: message.offset, key: message.key, value: message.value, headers: headersOf(message) })
        last.set(`${topic}/${partition}`, BigInt(message.offset))
        if (remaining() === 0) resolveDone()
      }
    })
    complete = await Promise.race([done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))])
    await consumer.disconnect().catch(() => undefined)
  }
  return { messages: out, complete }
}

/**
 * The lag of a group from the topic's end offsets and the group's committed ones (a partition the group never
 * committed counts whole); undefined unless the end offsets cover exactly the topic's `partitions` partitions —
 * metadata read while a restarted broker still loads its partitions is no lag of 0 (seed 5022 of session 16:
 * quiescence was declared with the notifiers far behind, right after the broker came back).
 */
export const lagOf = (
  ends: ReadonlyArray<{ readonly partition: number; readonly high: string; readonly low: string }>,
  committed: ReadonlyArray<{ readonly partition: number; readonly offset: string }>,
  partitions: number
): number | undefined => {
  const covered = new Set(ends.map((e) => e.partition))
  if (ends.length !== partitions || covered.size !== partitions) return undefined
  const at = new Map(committed.map((p) => [p.partition, BigInt(p.offset)]))
  let lag = 0n
  for (const end of ends) {
    const c = at.get(end.partition) ?? -1n
    lag += BigInt(end.high) - (c < 0n ? BigInt(end.low) : c)
  }
  return Number(lag)
}

/** How many messages of `topic` (of `partitions` partitions) the consumer group has not committed yet: what the
 * notifiers have still to consume. Fails when that is not known (`lagOf`). */
export const groupLag = async (kafka: Kafka, groupId: string, topic: string, partitions: number): Promise<number> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const ends = await admin.fetchTopicOffsets(topic)
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
    const lag = lagOf(ends, committed?.partitions ?? [], partitions)
    if (lag === undefined) throw new Error(`${topic}: end offsets of ${ends.length} partitions, ${partitions} expected`)
    return lag
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}
