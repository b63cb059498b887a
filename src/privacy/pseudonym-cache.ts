/**
 * Materialised pseudonyms kept in memory by the serving process. The mapping (domain, version,
 * gateway id) → pseudonym never changes once made — a rotation makes a new version, a merge or an
 * erasure removes the id — so a cached value is never stale, and replicas need no invalidation.
 * It spares the store one lookup per person and request: the analytics view's cost over the
 * unrestricted schema (bench/privacy.ts) is mostly that lookup.
 */
export class PseudonymCache {
  /** `${domain} ${version}` → gateway id → pseudonym; one map per domain version in use. */
  private readonly byVersion = new Map<string, Map<string, string>>();

  /** At most `maxPerVersion` ids per domain version (about 100 bytes each); a full map starts over. */
  constructor(private readonly maxPerVersion = 250_000) {}

  get(domain: string, version: number, id: string): string | undefined {
    return this.byVersion.get(`${domain} ${version}`)?.get(id);
  }

  set(domain: string, version: number, values: ReadonlyMap<string, string>): void {
    const key = `${domain} ${version}`;
    let m = this.byVersion.get(key);
    if (!m) {
      // A new version of a domain (a rotation) makes the older ones useless to this process.
      for (const k of this.byVersion.keys()) if (k.startsWith(`${domain} `)) this.byVersion.delete(k);
      this.byVersion.set(key, (m = new Map()));
    }
    if (m.size + values.size > this.maxPerVersion) m.clear();
    for (const [id, p] of values) m.set(id, p);
  }
}
