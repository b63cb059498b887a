/**
 * Reading a OneRoster CSV drop: manifest-driven bulk or delta files, validated completely before
 * any page is yielded, so a drop with a broken row applies nothing. Bulk files complete their
 * record types (records missing from them become tombstones); delta rows are upserts or, with
 * status tobedeleted, deletions. The same drop read again yields nothing.
 */
import type { Connector, ConnectorContext, ConnectorState, Page, ReadOptions } from '../types.ts';
import type { EntityType, SourceRecord } from '../../src/model/records.ts';
import { RostergateError } from '../../src/errors.ts';
import { checkHeader, defect, dropPages, fail, file, readDrop, readTable, type CsvProblems, type Drop, type DropPart, type DropState } from '../csv-kit.ts';
import { RESOURCES } from '../oneroster/mapping.ts';
import type { OrRole } from '../oneroster/wire.ts';
import { ALL_FILES, FILES, ORDER, toJson } from './binding.ts';
import type { OneRosterCsvConfig } from './config.ts';


const BOOLEAN_COLUMNS = new Set(['enabledUser', 'primary', 'americanIndianOrAlaskaNative', 'asian', 'blackOrAfricanAmerican', 'nativeHawaiianOrOtherPacificIslander', 'white', 'demographicRaceTwoOrMoreRaces', 'hispanicOrLatinoEthnicity']);
const DATE_COLUMNS = new Set(['startDate', 'endDate', 'birthDate', 'beginDate']);

export class OneRosterCsvConnector implements Connector {
  readonly type = 'oneroster-csv' as const;
  readonly sourceId: string;
  /** Tolerant-mode findings of the last read (file, line, column: never values). */
  warnings: string[] = [];
  /** Rows of the last read left out on purpose (file, line, sourcedId and why). */
  skipped: string[] = [];

  constructor(private readonly cfg: OneRosterCsvConfig, private readonly ctx: ConnectorContext) {
    this.sourceId = cfg.id;
  }

  async *read(prev: ConnectorState | null, opts: ReadOptions = {}): AsyncIterable<Page> {
    const drop = readDrop(this.cfg.path, this.sourceId, this.cfg);
    let notes: { defects: string[]; skipped: string[] } | undefined;
    const load = () => {
      const parts = this.load(drop);
      notes = { defects: this.warnings, skipped: this.skipped };
      return parts;
    };
    yield* dropPages(load, drop.fingerprint, prev as DropState | null, !!opts.full, undefined, () => notes);
  }

  /** Parses and validates the whole drop into records per file, in dependency order. */
  private load(drop: Drop): DropPart[] {
    const problems: CsvProblems = { source: this.sourceId, mode: this.cfg.mode, warnings: [], skipped: [], maxRowBytes: this.cfg.maxRowBytes };
    const manifestFile = file(drop, 'manifest.csv');
    if (!manifestFile) throw new RostergateError('CSV_INVALID', 'manifest.csv is missing', { source: this.sourceId, resource: 'manifest.csv' });
    const manifest = readTable(problems, manifestFile.name, manifestFile.bytes);
    checkHeader({ ...problems, mode: 'strict' }, manifest, { columns: ['propertyName', 'value'], required: ['propertyName', 'value'] });
    const props = new Map(manifest.rows.map((r) => [r.values.propertyName!.trim(), (r.values.value ?? '').trim()]));
    // Errors name the manifest's own line for the property (line 1 is its header).
    const lineOf = (prop: string) => manifest.rows.find((r) => r.values.propertyName!.trim() === prop)?.line ?? 1;
    const version = props.get('oneroster.version');
    if (version !== '1.1' && version !== '1.2') {
      fail(problems, manifestFile.name, lineOf('oneroster.version'), 'value', `oneroster.version must be 1.1 or 1.2 (expected 1.1 or 1.2, found ${version === undefined ? 'no such row' : version === '' ? 'a blank value' : 'another value'})`);
    }
    const modes = new Map<string, 'bulk' | 'delta'>();
    for (const name of ALL_FILES) {
      const mode = (props.get(`file.${name}`) ?? 'absent').toLowerCase();
      const present = file(drop, `${name}.csv`);
      if (mode === 'absent') {
        if (present) defect(problems, present.name, 1, undefined, `the manifest lists ${name} as absent but the file is in the drop (ignored)`);
        continue;
      }
      if (mode !== 'bulk' && mode !== 'delta') fail(problems, manifestFile.name, lineOf(`file.${name}`), 'value', `file.${name} must be absent, bulk or delta`);
      if (!present) fail(problems, manifestFile.name, lineOf(`file.${name}`), 'value', `the manifest lists ${name} as ${mode} but ${name}.csv is not in the drop`);
      modes.set(name, mode as 'bulk' | 'delta');
    }
    const specs = FILES[version as '1.1' | '1.2'];
    const table = (name: string) => {
      const f = file(drop, `${name}.csv`)!;
      const t = readTable(problems, f.name, f.bytes);
      checkHeader(problems, t, { ...specs[name]!, ordered: true });
      if (t.rows.length === 0) defect(problems, f.name, 2, undefined, 'the binding does not allow a file without data rows');
      for (const row of t.rows) this.checkRow(problems, f.name, row.line, row.values, modes.get(name)!, specs[name]!.required);
      // A bulk file is the complete set: a row it marks as gone is left out (so the record is
      // removed as absent), never stored as active.
      if (modes.get(name) === 'bulk') {
        t.rows = t.rows.filter((row) => {
          const status = (row.values.status ?? '').trim().toLowerCase();
          if (status !== 'tobedeleted' && status !== 'inactive') return true;
          problems.skipped!.push(`${f.name} line ${row.line}, sourcedId ${row.values.sourcedId}: status ${status} in a bulk file: row skipped (a record absent from a bulk file is removed)`);
          return false;
        });
      }
      return t;
    };
    // 1.2 keeps roles in roles.csv: join them onto users.
    const roles = new Map<string, OrRole[]>();
    const roleLines = new Map<string, number>();
    if (version === '1.2' && modes.has('roles')) {
      for (const r of table('roles').rows) {
        const v = r.values;
        if (!roleLines.has(v.userSourcedId!)) roleLines.set(v.userSourcedId!, r.line);
        if ((v.status ?? '').toLowerCase() === 'tobedeleted') continue;
        const list = roles.get(v.userSourcedId!) ?? [];
        list.push({ roleType: v.roleType, role: v.role!, org: { sourcedId: v.orgSourcedId! }, beginDate: v.beginDate, endDate: v.endDate });
        roles.set(v.userSourcedId!, list);
      }
    }
    // In a 1.2 delta, a user's roles come only when its roles.csv rows do: without them, the roles
    // (and the organisations they name) stored from earlier drops stand.
    const rolesUnknown = (row: Record<string, string>) =>
      version === '1.2' && modes.get('users') === 'delta' && !roleLines.has(row.sourcedId ?? '') && (row.status ?? '').toLowerCase() !== 'tobedeleted';
    const parts: DropPart[] = [];
    const usersInDrop = new Set<string>();
    for (const name of ORDER) {
      const mode = modes.get(name);
      if (!mode) continue;
      const t = table(name);
      const res = RESOURCES.find((r) => r.name === name)!;
      const records = t.rows.flatMap((row) => {
        try {
          const out = res.map(toJson(name, row.values, roles.get(row.values.sourcedId ?? '')));
          if (name !== 'users' || !rolesUnknown(row.values)) return out;
          const keep = ['roles', 'orgKeys', ...(row.values.primaryOrgSourcedId?.trim() ? [] : ['primaryOrgKey'])];
          return out.map((r) => (r.type === 'person' && !r.deleted ? { ...r, keep } : r));
        } catch (e) {
          return fail(problems, t.file, row.line, undefined, (e as Error).message);
        }
      });
      if (name === 'users') for (const r of t.rows) usersInDrop.add(r.values.sourcedId ?? '');
      parts.push({ file: `${name}.csv`, records, completes: mode === 'bulk' ? ([...res.completes] as EntityType[]) : undefined });
    }
    // Roles are applied through their users: a role row whose user is not in the drop cannot be.
    for (const [user, line] of roleLines) {
      if (!usersInDrop.has(user)) {
        problems.warnings.push(`roles.csv line ${line}: a role change for a user whose users.csv row is not in this drop is not applied (the next bulk drop carries it)`);
      }
    }
    this.warnings = problems.warnings;
    this.skipped = problems.skipped!;
    // Every one of them is in the sync report (`--report FILE`); the log has the count and a sample.
    if (problems.warnings.length || this.skipped.length) {
      this.ctx.log.warn({ source: this.sourceId, warnings: problems.warnings.length, skipped: this.skipped.length, first: problems.warnings.slice(0, 5) }, 'CSV drop accepted with warnings (all of them in the sync report)');
    }
    return parts;
  }

  private checkRow(p: CsvProblems, fileName: string, line: number, v: Record<string, string>, mode: 'bulk' | 'delta', required: string[]): void {
    if (!v.sourcedId?.trim()) fail(p, fileName, line, 'sourcedId', 'sourcedId is empty');
    // A blank required reference (a class without its courseSourcedId) would store a record cut
    // off from what it belongs to without a word. (A 1.1 user's orgSourcedIds is left out: guardians
    // have no school, and exports leave it blank for them.)
    for (const col of required) {
      if (/SourcedIds?$/.test(col) && col !== 'orgSourcedIds' && col in v && !v[col]!.trim()) defect(p, fileName, line, col, `required reference is blank (sourcedId ${v.sourcedId})`);
    }
    if (mode === 'bulk' && v.status) defect(p, fileName, line, 'status', 'must be empty in a bulk file');
    if (mode === 'bulk' && v.dateLastModified) defect(p, fileName, line, 'dateLastModified', 'must be empty in a bulk file');
    if (mode === 'delta') {
      if (!['active', 'tobedeleted'].includes(v.status ?? '')) defect(p, fileName, line, 'status', 'must be active or tobedeleted in a delta file');
      if (!v.dateLastModified || Number.isNaN(Date.parse(v.dateLastModified))) defect(p, fileName, line, 'dateLastModified', 'must be an ISO 8601 date-time in a delta file');
    }
    for (const [col, val] of Object.entries(v)) {
      if (!val) continue;
      if (BOOLEAN_COLUMNS.has(col) && val !== 'true' && val !== 'false') {
        if (/^(true|false)$/i.test(val)) defect(p, fileName, line, col, 'booleans are lower case (true/false)');
        else fail(p, fileName, line, col, 'not a boolean (true/false)');
      }
      if (DATE_COLUMNS.has(col) && !/^\d{4}-\d{2}-\d{2}$/.test(val)) defect(p, fileName, line, col, 'dates are YYYY-MM-DD');
    }
  }
}
