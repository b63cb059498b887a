/**
 * A record's `data` read with only some of its members decoded (ListQuery.fields): the members the
 * caller expects to read come from the store one by one, the rest stay in the record's JSON text,
 * parsed on first use. Why: an extract reads a handful of the fields of each record (an analytics
 * classes extract 5 of 10), and decoding whole records was most of what its young collections found
 * alive (docs/extract-engine.md, "Reading only the fields a purpose reads").
 *
 * Exact by construction, not by a list of what each reader reads. The object is a Proxy over the
 * decoded members. A read of a member that was asked for answers from them: present, it has the
 * stored value; absent from the record, it is absent here too (the store tells absent from JSON
 * null). Any other read — another member, `in`, `Object.keys`, a spread, `JSON.stringify`, a write —
 * parses the whole record once and answers from it, and is reported (`missed`), so the caller can
 * ask for that member on its next page. A reader therefore sees the whole record whatever it does;
 * reading only what was asked for is what makes it cheap.
 *
 * Symbols are not members (JSON has none): a symbol reads as on any plain object.
 */

/**
 * Called when a read needed more than the members asked for: the member's name, or null when the
 * read needed every member (keys listed, the object spread or written to).
 */
export type MissedMember = (member: string | null) => void;

/** The record's JSON text, until a read needs the whole record; then the parsed record. */
const TEXT = Symbol('record text');
const WHOLE = Symbol('whole record');

type Target = Record<string, unknown> & { [TEXT]?: string; [WHOLE]?: Record<string, unknown> };

/**
 * A maker of partial records for one list call: `fields` the members decoded, `missed` told of any
 * read beyond them. The handler is shared by the page's records (one Proxy each, no closure).
 */
export function partialRecords(fields: readonly string[], missed: MissedMember): (text: string, row: readonly unknown[], from: number) => object {
  const asked = new Set(fields);
  const whole = (t: Target, member: string | null): Record<string, unknown> => {
    missed(member);
    let w = t[WHOLE];
    if (!w) {
      w = JSON.parse(t[TEXT]!) as Record<string, unknown>;
      t[WHOLE] = w;
      t[TEXT] = undefined;
    }
    return w;
  };
  const handler: ProxyHandler<Target> = {
    get(t, key) {
      if (typeof key === 'symbol') return key === TEXT || key === WHOLE ? undefined : Reflect.get(Object.prototype, key);
      // Absent from the record, an asked-for member reads through the prototype as it would on the
      // whole record (both are plain objects).
      if (asked.has(key)) return t[WHOLE] ? t[WHOLE][key] : t[key];
      return whole(t, key)[key];
    },
    has(t, key) {
      if (typeof key === 'symbol') return key in Object.prototype;
      if (asked.has(key)) return t[WHOLE] ? key in t[WHOLE] : key in t;
      return key in whole(t, key);
    },
    // Listing, describing or changing members needs every one of them.
    ownKeys: (t) => Reflect.ownKeys(whole(t, null)),
    getOwnPropertyDescriptor: (t, key) => (typeof key === 'symbol' ? undefined : Reflect.getOwnPropertyDescriptor(whole(t, null), key)),
    set: (t, key, value) => Reflect.set(whole(t, null), key, value),
    defineProperty: (t, key, d) => Reflect.defineProperty(whole(t, null), key, d),
    deleteProperty: (t, key) => Reflect.deleteProperty(whole(t, null), key),
    // Freezing would bind the Proxy's answers to the decoded members only: refused.
    preventExtensions: () => false,
  };
  // The members are the row's values from `from` on, as JSON text, in the order of `fields`.
  return (text, row, from) => {
    const t: Target = { [TEXT]: text };
    for (let i = 0; i < fields.length; i++) {
      const m = row[from + i] as string | null | undefined;
      // SQL NULL: the record has no such member (JSON null comes as the text "null").
      if (m !== null && m !== undefined) t[fields[i]!] = JSON.parse(m);
    }
    return new Proxy(t, handler);
  };
}
