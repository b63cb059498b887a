/**
 * Stable JSON (sorted keys): equal content gives equal text and equal hashes. Shared by sync
 * (content hashes, identity decisions) and the audit log's hash chain, so it sits with the model.
 *
 * The text must never change: stored content hashes and the audit chain were made with it
 * (test/unit/stable-json.test.ts compares it with the first version on generated values). Written
 * as loops rather than `filter/sort/map/join` chains, since a sync hashes every record it reads
 * and those chains made three arrays per object (a quarter of a content hash's garbage). The keys
 * are sorted in place by insertion (`sortKeys`): an object has a dozen keys, and `Array#sort`
 * allocates a work copy per call (a third of stableJson's own garbage in a sync's profile).
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
  const keys = sortKeys(Object.keys(o));
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

/**
 * The keys in the order `Array#sort` gives strings (UTF-16 code units, which `<` compares too),
 * in place. Keys of an object are distinct, so stability does not arise. Past a few dozen keys
 * (a vendor's extension object may carry any number) `Array#sort`, whose time does not grow with
 * the square of them.
 */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 32) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}
