import { openStore } from '../runtime.ts';
import { loadConfig } from './serve.ts';

/**
 * `rostergate identity conflicts`: records of people and organisations that matched more than one
 * record, or whose match rules disagreed, and were therefore kept apart. For the operator who
 * resolves them at the source, so it names the source and the record's key there, and the gateway
 * ids involved — no names or emails.
 */
export async function identityConflicts(opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig(opts.config);
  const store = await openStore(cfg);
  try {
    const conflicts = await store.conflicts();
    if (opts.json) {
      process.stdout.write(JSON.stringify(conflicts, null, 2) + '\n');
      return;
    }
    if (conflicts.length === 0) {
      process.stdout.write('no identity conflicts: every person and organisation matched at most one other\n');
      return;
    }
    for (const c of conflicts) {
      process.stdout.write(`${c.at}  source ${c.source}, ${c.type} ${c.key}: ${c.reason}; kept apart from ${c.candidates.join(', ')}\n`);
    }
    // Say what the gateway does and does not do: a record kept apart is not re-linked later.
    process.stdout.write(
      `${conflicts.length} conflict(s). Each record was kept as a separate person or organisation; nothing was merged. Correct the matched id ` +
        '(SIS id or email of a person, official identifier or SIS id of a school or district) at the source so new records match one; ' +
        'a record already kept apart stays separate (the gateway does not re-link after the fact).\n',
    );
  } finally {
    await store.close();
  }
}
