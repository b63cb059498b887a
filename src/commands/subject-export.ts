/**
 * `rostergate subject-export`: everything held about one person, as JSON and a readable Markdown
 * summary, both written owner-only. The export is audited (kind `subject-export`), naming the
 * person only by a keyed hash of their gateway id.
 */
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { appendAudit } from '../privacy/audit.ts';
import { setupPrivacy } from '../graphql/privacy.ts';
import { buildSubjectExport, exportedCategories, subjectRef } from '../privacy/subject-export.ts';
import { subjectSummary } from '../privacy/subject-summary.ts';
import { sourceTypes } from '../runtime.ts';
import { isPostgresUrl, openStore } from '../store/open.ts';
import type { Store } from '../store/types.ts';
import { loadConfig } from '../config/config.ts';

export interface SubjectExportOptions {
  config?: string;
  person?: string;
  source?: string;
  key?: string;
  pseudonym?: string;
  domain?: string;
  out: string;
  summary?: string;
  force?: boolean;
}

export async function subjectExportCommand(opts: SubjectExportOptions): Promise<void> {
  assertPersonNamed(opts);
  const summaryPath = opts.summary ?? `${opts.out}.md`;
  if (summaryPath === opts.out) throw new RostergateError('CONFIG_INVALID', '--summary must be another file than --out');
  for (const f of [opts.out, summaryPath]) {
    if (existsSync(f) && !opts.force) throw new RostergateError('CONFIG_INVALID', `${f} exists: refusing to overwrite (pass --force)`);
  }
  const cfg = loadConfig(opts.config, 'subject-export');
  if (!isPostgresUrl(cfg.store) && !existsSync(cfg.store)) throw new RostergateError('DATA_FOLDER', `no store at ${cfg.store}: run \`rostergate sync\` first`);
  const privacy = setupPrivacy(cfg, buildUnifiedSchema());
  const store = await openStore(cfg);
  try {
    const personId = await personOf(store, opts);
    const x = await buildSubjectExport({
      store, personId, classification: privacy.classification, purposes: privacy.purposes, schemas: privacy.schemas,
      clients: cfg.clients, sourceTypes: sourceTypes(cfg), tenant: cfg.privacy.tenant,
    });
    const { categories, fields } = exportedCategories(privacy.classification, x);
    const key = privacy.keyring.auditKey();
    // Audited before anything is written: an export that leaves no trace is worse than a trace of one that failed to write.
    await store.transaction((tx) =>
      appendAudit(tx, key, {
        at: x.generatedAt, client: 'operator', purpose: 'subject-access', kind: 'subject-export',
        operation: `subject-export (run by ${operatorName()})`, operationHash: subjectRef(key, personId),
        categories, fields, people: 1,
      }),
    );
    writeOwnerOnly(opts.out, JSON.stringify(x, null, 2) + '\n');
    writeOwnerOnly(summaryPath, subjectSummary(x));
    process.stdout.write(
      `subject export of ${personId}: ${x.sourceRecords.length} source record(s) from ${new Set(x.sourceRecords.map((r) => r.source)).size} source(s), ` +
        `${x.pseudonyms.length} pseudonym(s), ${x.disclosures.length} client(s) in the disclosure ledger, ${x.audit.entries.length} audit entr${x.audit.entries.length === 1 ? 'y' : 'ies'} that may concern them.\n` +
        `wrote ${opts.out} and ${summaryPath} (mode 600); the export is recorded in the audit log as ${subjectRef(key, personId)}\n`,
    );
  } finally {
    await store.close();
  }
}

/** The person the options name: a gateway id, a source's record key, or a pseudonym in its domain. */
/** The person is named one way, checked before the config, key or store is read (a usage error comes first). */
function assertPersonNamed(o: SubjectExportOptions): void {
  const ways = [o.person !== undefined, o.source !== undefined || o.key !== undefined, o.pseudonym !== undefined || o.domain !== undefined].filter(Boolean).length;
  if (ways !== 1) throw new RostergateError('CONFIG_INVALID', 'name the person one way: --person ID, or --source ID and --key KEY, or --pseudonym P and --domain D');
  if ((o.source !== undefined || o.key !== undefined) && (!o.source || !o.key)) throw new RostergateError('CONFIG_INVALID', '--source and --key go together: the source id and the person\'s key in that source');
  if ((o.pseudonym !== undefined || o.domain !== undefined) && (!o.pseudonym || !o.domain)) throw new RostergateError('CONFIG_INVALID', '--pseudonym and --domain go together: a pseudonym is only meaningful in its domain');
}

async function personOf(store: Store, o: SubjectExportOptions): Promise<string> {
  if (o.person !== undefined) {
    const [e] = await store.getEntities([o.person]);
    if (!e || e.type !== 'person') throw new RostergateError('NOT_FOUND', `no person ${o.person} in the store (gateway ids look like per_…); nothing was written`);
    return e.id;
  }
  if (o.source !== undefined || o.key !== undefined) {
    const id = await store.entityOfRecord({ source: o.source!, type: 'person', key: o.key! });
    if (!id) throw new RostergateError('NOT_FOUND', `source ${o.source} has delivered no person with that key (or it is not linked to a person yet); nothing was written`);
    return id;
  }
  const id = await store.entityByPseudonym(o.domain!, o.pseudonym!);
  if (!id) throw new RostergateError('NOT_FOUND', `no person has pseudonym ${o.pseudonym} in domain ${o.domain} (current key version); nothing was written`);
  return id;
}

/** Created afresh (an overwritten file would keep its old, perhaps wider, mode), owner-only. */
function writeOwnerOnly(path: string, text: string): void {
  rmSync(path, { force: true });
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown user';
  }
}
