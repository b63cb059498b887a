/**
 * The mass-deletion guard as an operator meets it through `rostergate sync`: a full listing (here a
 * OneRoster CSV bulk drop) that would delete more than the configured share of a type stops with
 * exit 3, says so as its last line, and deletes nothing; running it again does the same until
 * `--allow-mass-delete`; `sync.maxDeleteShare` in the config moves the threshold (default 20 %).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { writeOneRosterDrop } from '../../connectors/oneroster-csv/index.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const sync = (cfg: string, ...flags: string[]) =>
  spawnSync(process.execPath, [bin, 'sync', '--config', cfg, ...flags], { encoding: 'utf8', env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' }, timeout: 60_000 });

async function enrollments(dir: string): Promise<number> {
  const store = SqliteStore.open(join(dir, 'rg.db'));
  try {
    return (await store.counts()).enrollment ?? 0;
  } finally {
    await store.close();
  }
}

/** Keeps the header and the first `share` of the data rows of the drop's enrollments.csv. */
function keepEnrollments(drop: string, share: number): number {
  const [header, ...rows] = readFileSync(join(drop, 'enrollments.csv'), 'utf8').trimEnd().split(/\r?\n/);
  const kept = rows.slice(0, Math.round(rows.length * share));
  writeFileSync(join(drop, 'enrollments.csv'), [header, ...kept].join('\r\n') + '\r\n');
  return rows.length - kept.length;
}

describe('rostergate sync and the mass-deletion guard', () => {
  it('stops a drop that loses over 20 % of enrollments (exit 3, nothing deleted) until --allow-mass-delete', async () => {
    const dir = tempDir();
    const drop = join(dir, 'drop');
    const ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 2 });
    writeOneRosterDrop(ds, drop, { version: '1.2' });
    const cfg = join(dir, 'rostergate.yaml');
    writeFileSync(cfg, stringify({ store: './rg.db', server: { openAccess: true }, sources: [{ id: 'nightly-drop', type: 'oneroster-csv', path: './drop' }] }));
    expect(sync(cfg).status).toBe(0);
    const all = await enrollments(dir);
    expect(all).toBe(ds.list('enrollment').length);

    // 25 % gone: over the default share.
    const gone = keepEnrollments(drop, 0.75);
    const guarded = sync(cfg);
    expect(guarded.status).toBe(3);
    expect(guarded.stdout).toMatch(/^nightly-drop: guarded \(incremental, run 2\)/m);
    expect(guarded.stderr.trim().split('\n').at(-1)).toBe(
      `rostergate: source nightly-drop: mass-deletion guard stopped the sync from deleting ${gone} of ${all} enrollment records (over 20%). Nothing was deleted. If the source really lost these records, run again with --allow-mass-delete.`,
    );
    expect(await enrollments(dir)).toBe(all);

    // A guarded source is read in full again next time, and stays guarded without the flag.
    const again = sync(cfg);
    expect(again.status).toBe(3);
    expect(again.stdout).toMatch(/^nightly-drop: guarded \(full, run 3\)/m);
    expect(await enrollments(dir)).toBe(all);

    const allowed = sync(cfg, '--allow-mass-delete');
    expect(allowed.stderr).toBe('');
    expect(allowed.status).toBe(0);
    expect(allowed.stdout).toMatch(new RegExp(`^nightly-drop: complete \\(full, run 4\\) — .*, ${gone} deleted,`, 'm'));
    expect(await enrollments(dir)).toBe(all - gone);
  }, 90_000);

  it('sync.maxDeleteShare sets the threshold: a share under it deletes, one over it is guarded', async () => {
    const dir = tempDir();
    const drop = join(dir, 'drop');
    const ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 2 });
    writeOneRosterDrop(ds, drop, { version: '1.2' });
    const cfg = join(dir, 'rostergate.yaml');
    writeFileSync(cfg, stringify({
      store: './rg.db', server: { openAccess: true }, sync: { maxDeleteShare: 0.4 },
      sources: [{ id: 'nightly-drop', type: 'oneroster-csv', path: './drop' }],
    }));
    expect(sync(cfg).status).toBe(0);
    const all = await enrollments(dir);

    // 30 %: over the default 20 % but under the configured 40 %.
    const gone = keepEnrollments(drop, 0.7);
    const under = sync(cfg);
    expect(under.stderr).toBe('');
    expect(under.status).toBe(0);
    expect(await enrollments(dir)).toBe(all - gone);

    // Half of what is left: over 40 %.
    keepEnrollments(drop, 0.5);
    const over = sync(cfg);
    expect(over.status).toBe(3);
    expect(over.stderr).toMatch(/mass-deletion guard stopped the sync from deleting \d+ of \d+ enrollment records \(over 40%\)/);
    expect(await enrollments(dir)).toBe(all - gone);
  }, 90_000);
});
