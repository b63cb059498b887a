/**
 * A view of the demo dataset restricted to some schools: what one rostering source of a district
 * would hold. The demo gives each vendor sandbox a different school, as a district that rosters its
 * elementary school through Clever and its middle school through ClassLink would; people who belong
 * to several (a teacher in two schools, a guardian of siblings) then arrive from several sources.
 */
import type { EntityType } from '../model/records.ts';
import type { RosterDataset } from './dataset.ts';
import type { DatasetRow, DatasetView, JournalEntry } from '../../connectors/dataset-view.ts';

export function sliceBySchools(ds: RosterDataset, schoolKeys: string[]): DatasetView {
  const schools = new Set(schoolKeys);
  let cache: { seq: number; keep: Map<EntityType, Set<string>> } | undefined;
  const members = () => {
    if (cache?.seq === ds.headSeq) return cache.keep;
    const all = <T extends EntityType>(t: T) => ds.listWithDeleted(t);
    const keep = new Map<EntityType, Set<string>>();
    const set = (t: EntityType, keys: Iterable<string>) => keep.set(t, new Set(keys));
    set('org', all('org').filter((o) => o.data.type !== 'school' || schools.has(o.key)).map((o) => o.key));
    set('academicSession', all('academicSession').map((a) => a.key));
    set('course', all('course').filter((c) => !c.data.orgKey || keep.get('org')!.has(c.data.orgKey)).map((c) => c.key));
    set('class', all('class').filter((c) => c.data.schoolKey && schools.has(c.data.schoolKey)).map((c) => c.key));
    set('enrollment', all('enrollment').filter((e) => keep.get('class')!.has(e.data.classKey)).map((e) => e.key));
    const people = new Set(
      all('person')
        .filter((p) => (p.data.orgKeys ?? []).some((k) => schools.has(k)) || p.data.roles.includes('administrator'))
        .map((p) => p.key),
    );
    for (const e of all('enrollment')) if (keep.get('enrollment')!.has(e.key)) people.add(e.data.personKey);
    const guardianships = all('guardianship').filter((g) => people.has(g.data.studentKey));
    for (const g of guardianships) people.add(g.data.guardianKey);
    set('person', people);
    set('demographics', all('demographics').filter((d) => people.has(d.data.personKey)).map((d) => d.key));
    set('guardianship', guardianships.map((g) => g.key));
    cache = { seq: ds.headSeq, keep };
    return keep;
  };
  const inSlice = (type: EntityType, key: string) => members().get(type)!.has(key);
  // Filtered listings kept per version, as the dataset keeps its own: a page costs no scan.
  const listings = new Map<string, { seq: number; rows: readonly DatasetRow[] }>();
  const listing = <T extends EntityType>(type: T, withDeleted: boolean): readonly DatasetRow<T>[] => {
    const id = `${type}:${withDeleted}`;
    let l = listings.get(id);
    if (l?.seq !== ds.headSeq) {
      const rows = withDeleted ? ds.listWithDeleted(type) : ds.list(type);
      listings.set(id, (l = { seq: ds.headSeq, rows: Object.freeze(rows.filter((r) => inSlice(type, r.key))) }));
    }
    return l.rows as readonly DatasetRow<T>[];
  };
  return {
    list: <T extends EntityType>(type: T) => listing(type, false),
    listWithDeleted: <T extends EntityType>(type: T) => listing(type, true),
    get: <T extends EntityType>(type: T, key: string) => (inSlice(type, key) ? ds.get(type, key) : undefined),
    getWithDeleted: <T extends EntityType>(type: T, key: string) => (inSlice(type, key) ? ds.getWithDeleted(type, key) : undefined),
    changesSince: (seq: number): readonly JournalEntry[] => ds.changesSince(seq).filter((e) => inSlice(e.type, e.key)),
    get headSeq() {
      return ds.headSeq;
    },
    now: () => ds.now(),
  };
}
