/**
 * The in-memory stand-in for the PostgreSQL database (tests, the fast property runs). It knows no table: each
 * owner defines its own (`memoryTable`, beside its SQL, in its folder) and finds it here by that definition,
 * created on first use. One MemoryDatabase is one database: the memory layers built over it share its tables,
 * so an in-memory append writes the event store's and every inline projection's tables in one step
 * (JavaScript runs it without interleaving, which is what makes it atomic).
 */
import { Context, Layer } from "effect"

/** An owner's in-memory table: its name (for reading) and how an empty one is made. */
export interface MemoryTable<A> {
  readonly name: string
  readonly make: () => A
}

export const memoryTable = <A>(name: string, make: () => A): MemoryTable<A> => ({ name, make })

export class MemoryDatabase extends Context.Tag("MemoryDatabase")<MemoryDatabase, {
  /** The table of this database that `definition` describes (the same object on every call). */
  readonly table: <A>(definition: MemoryTable<A>) => A
}>() {
  static readonly layer = Layer.sync(MemoryDatabase, () => {
    const tables = new Map<MemoryTable<unknown>, unknown>()
    return {
      table: <A>(definition: MemoryTable<A>): A => {
        if (!tables.has(definition)) tables.set(definition, definition.make())
        return tables.get(definition) as A
      }
    }
  })
}
