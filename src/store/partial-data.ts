/**
 * The `data` of listed records as an extract reads it (ListQuery.fields, ListQuery.memberReads):
 * either whole, with every member read told to the caller, or without the members the caller does
 * not read, so that those are neither sent nor parsed. Why: an extract's columns read a few members
 * of each record (an analytics classes extract 5 of 10), and the whole records it decoded were most
 * of what its young collections found alive (docs/extract-engine.md, "Reading only the members a
 * purpose reads").
 *
 * Exact by construction, not by a list of what each reader reads. Both kinds are a Proxy:
 * - a *recorded* record is the whole record; each read of a member (`get`, `in`) is told, and so is
 *   a read that needs every member (keys listed, a spread, JSON text) as `null`;
 * - a *partial* record is the record as stored without the members the caller left out (the store
 *   removes them in SQL, so absent stays absent and JSON null stays null). Only the members asked
 *   for may be read: a read of any other, or of every member, is told and then throws
 *   `MemberNotRead`, as a key-only row throws KeyOnlyRead, so a reader can never answer from
 *   members that were not read. The caller reads the whole record and makes its value again.
 *
 * Symbols are not members (JSON has none): a symbol reads as on any plain object.
 */

/** A read of listed records' data: a member by name, or every member (null). */
export interface MemberReads {
  read(member: string | null): void;
  /** A recorded record's members (what a partial read could leave out, and how much). */
  members?(names: readonly string[]): void;
}

/** A read of a partial record that needed a member it was not read with (null: every member). */
export class MemberNotRead extends Error {
  constructor(readonly member: string | null) {
    super(member === null ? 'every member of a record read with only some' : `member "${member}" of a record read without it`);
    this.name = 'MemberNotRead';
  }
}

type Data = Record<string, unknown>;

/** Whether a member can be read on its own (ListQuery.fields): a name both stores put in a JSON path as it is. */
export const isMemberName = (name: string): boolean => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);

/** Whole records whose every read is told (`reads`). */
export function recordedRecords(reads: MemberReads): (data: Data) => object {
  const every = (t: Data) => (reads.read(null), t);
  const handler: ProxyHandler<Data> = {
    get(t, key) {
      if (typeof key === 'string') reads.read(key);
      return t[key as string];
    },
    has(t, key) {
      if (typeof key === 'string') reads.read(key);
      return key in t;
    },
    ownKeys: (t) => Reflect.ownKeys(every(t)),
    getOwnPropertyDescriptor: (t, key) => Reflect.getOwnPropertyDescriptor(every(t), key),
    set: (t, key, value) => Reflect.set(every(t), key, value),
    defineProperty: (t, key, d) => Reflect.defineProperty(every(t), key, d),
    deleteProperty: (t, key) => Reflect.deleteProperty(every(t), key),
  };
  return (data) => {
    reads.members?.(Object.keys(data));
    return new Proxy(data, handler);
  };
}

/**
 * Partial records of one list call: a record's data as the store read it, without some of its
 * members (ListQuery.leaveOut), of which `fields` may be read. Only `fields` may be read, whatever
 * else the data holds: what a read may see does not depend on what the store left out, only its
 * cost does. The handler is shared by the page's records (one Proxy each, no closure).
 */
export function partialRecords(fields: readonly string[], reads: MemberReads): (data: Data) => object {
  const asked = new Set(fields);
  const notRead = (member: string | null): never => {
    reads.read(member);
    throw new MemberNotRead(member);
  };
  const handler: ProxyHandler<Data> = {
    // An asked-for member absent from the record reads through the prototype, as it would on the
    // whole record (both are plain objects).
    get: (t, key) => (typeof key === 'symbol' || asked.has(key) ? t[key as string] : notRead(key)),
    has: (t, key) => (typeof key === 'symbol' || asked.has(key) ? key in t : notRead(key)),
    ownKeys: () => notRead(null),
    getOwnPropertyDescriptor: () => notRead(null),
    set: () => notRead(null),
    defineProperty: () => notRead(null),
    deleteProperty: () => notRead(null),
    preventExtensions: () => notRead(null),
  };
  return (data) => new Proxy(data, handler);
}
