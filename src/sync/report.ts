/**
 * The sync report: everything a run found wrong with its source's data, entry by entry — values
 * repaired or dropped at the mapping boundary, records held back, references that never resolved,
 * rows a drop skipped and the drop's other defects. Records are named by type and source key (the
 * vendor's id, never a name or an email); fields by name, never by value.
 *
 * It goes to `--report FILE` as JSON; the human summary shows only counts by kind.
 */
import { checkRecord } from '../model/values.ts';
import type { SourceRecord } from '../model/records.ts';
import type { PageNotes } from '../../connectors/types.ts';

export type ReportKind = 'repaired-value' | 'dropped-value' | 'held-back' | 'dangling-reference' | 'skipped-row' | 'drop-defect';

export interface ReportEntry {
  kind: ReportKind;
  /** Vendor resource or file the record came from ("users", "users.csv"); absent when found after the last page. */
  resource?: string;
  /** `type key`, e.g. "person 5f2a…" (the source's own key). */
  record?: string;
  field?: string;
  message: string;
}

export const KIND_LABELS: Record<ReportKind, string> = {
  'repaired-value': 'values repaired',
  'dropped-value': 'invalid values dropped',
  'held-back': 'records held back',
  'dangling-reference': 'dangling references',
  'skipped-row': 'rows skipped',
  'drop-defect': 'drop defects',
};

export class SyncReport {
  readonly entries: ReportEntry[] = [];
  private readonly seen = new Set<string>();

  add(e: ReportEntry): void {
    // A record waiting across pages is reported once per field, not at every retry.
    const id = `${e.kind}\0${e.record ?? ''}\0${e.field ?? ''}\0${e.message}`;
    if (e.record && this.seen.has(id)) return;
    this.seen.add(id);
    this.entries.push(e);
  }

  counts(): Partial<Record<ReportKind, number>> {
    const out: Partial<Record<ReportKind, number>> = {};
    for (const e of this.entries) out[e.kind] = (out[e.kind] ?? 0) + 1;
    return out;
  }

  /** Records of a page as they may be stored: repaired, with unusable values dropped, held-back ones left out. */
  checkPage(resource: string, records: SourceRecord[]): { records: SourceRecord[]; heldBack: SourceRecord[] } {
    const out: SourceRecord[] = [];
    const heldBack: SourceRecord[] = [];
    for (const r of records) {
      const { record, issues } = checkRecord(r);
      for (const i of issues) {
        const kind: ReportKind = i.action === 'repaired' ? 'repaired-value' : i.action === 'dropped' ? 'dropped-value' : 'held-back';
        const what = i.action === 'repaired' ? `repaired (${i.problem})` : i.action === 'dropped' ? `${i.problem}: left out` : `${i.problem}: record held back`;
        this.add({ kind, resource, record: `${r.type} ${r.key}`, field: i.field, message: what });
      }
      if (record) out.push(record);
      else heldBack.push(r);
    }
    return { records: out, heldBack };
  }

  /** What a connector found reading its resource (CSV drops: file, line and column, never values). */
  addNotes(resource: string, notes: PageNotes | undefined): void {
    // A drop's notes come with its first page; each names its own file ("users.csv line 4, …").
    const fileOf = (m: string) => /^([^\s,]+) line \d+/.exec(m)?.[1] ?? resource;
    for (const m of notes?.skipped ?? []) this.add({ kind: 'skipped-row', resource: fileOf(m), message: m });
    for (const m of notes?.defects ?? []) this.add({ kind: 'drop-defect', resource: fileOf(m), message: m });
  }

  dangling(record: { type: string; key: string }, fields: string[], heldBack: boolean): void {
    for (const field of fields) {
      this.add({
        kind: 'dangling-reference',
        record: `${record.type} ${record.key}`,
        field,
        message: heldBack ? 'refers to a record the source never delivered: record held back until it comes' : 'refers to a record the source never delivered: stored without the reference',
      });
    }
  }
}

/** The summary line of counts by kind, e.g. "3 invalid values dropped, 1 records held back". */
export function reportCounts(counts: Partial<Record<ReportKind, number>>): string {
  return (Object.keys(KIND_LABELS) as ReportKind[]).filter((k) => counts[k]).map((k) => `${counts[k]} ${KIND_LABELS[k]}`).join(', ');
}
