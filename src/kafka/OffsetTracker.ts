/**
 * Which offsets of one partition are finished, when messages finish out of order (docs/ARCHITECTURE.md "Payment
 * worker": key-level parallelism). The committable offset is the end of the contiguous prefix of finished
 * messages: the first unfinished offset, or one past the highest taken when all are finished. It never passes an
 * unfinished message, whatever order the completions come in (property-tests/p12-offsets.test.ts).
 */
export class OffsetTracker {
  /** Offsets taken, in increasing order; `head` skips the finished prefix. */
  private readonly taken: Array<bigint> = []
  private head = 0
  private readonly unfinished = new Set<bigint>()
  private highest = -1n

  /** Take an offset for processing; false when it was taken before (a redelivery of a message we hold). */
  add(offset: bigint): boolean {
    if (offset <= this.highest) return false
    this.highest = offset
    this.taken.push(offset)
    this.unfinished.add(offset)
    return true
  }

  finish(offset: bigint): void {
    this.unfinished.delete(offset)
  }

  /** Messages taken and not finished. */
  get inFlight(): number {
    return this.unfinished.size
  }

  /** The offset to commit (the next one to read after a restart); undefined before anything was taken. */
  committable(): bigint | undefined {
    while (this.head < this.taken.length && !this.unfinished.has(this.taken[this.head]!)) this.head++
    if (this.head > 1024) {
      this.taken.splice(0, this.head)
      this.head = 0
    }
    if (this.highest < 0n) return undefined
    return this.head < this.taken.length ? this.taken[this.head]! : this.highest + 1n
  }
}
