/**
 * Stable JSON (sorted keys): equal content gives equal text and equal hashes. Shared by sync
 * (content hashes, identity decisions) and the audit log's hash chain, so it sits with the model.
 *
 * The text must never change: stored content hashes and the audit chain were made with it
 * (test/unit/stable-json.test.ts compares it with the first version on generated values). Written
 * as loops rather than `filter/sort/map/join` chains, since a sync hashes every record it reads
 * and those chains made three arrays per object (a quarter of a content hash's garbage).
 */
export function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      if (i) s += ',';
      // As `join` writes them: nothing for a value JSON has no text for (undefined, a function).
      s += stableJson(v[i]) ?? '';
    }
    return s + ']';
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let s = '{';
  let first = true;
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    if (!first) s += ',';
    first = false;
    s += JSON.stringify(k) + ':' + (stableJson(x) ?? '');
  }
  return s + '}';
}
