/**
 * `rostergate retention run`: removes what is past its retention period (src/privacy/retention.ts)
 * and prints what it removed per kind; `--dry-run` prints what a run would remove and keeps it.
 */
import { KeyRing } from '../privacy/pseudonym.ts';
import { assertStoreKey } from '../privacy/store-key.ts';
import { runRetention } from '../privacy/retention.ts';
import { openStore } from '../store/open.ts';
import { loadConfig } from '../config/config.ts';

const out = (s: string) => process.stdout.write(s + '\n');

export async function retentionRunCommand(opts: { config?: string; dryRun?: boolean }): Promise<number> {
  const cfg = loadConfig(opts.config, 'retention run');
  const keyring = KeyRing.load({ tenant: cfg.privacy.tenant, file: cfg.privacy.masterKeyFile });
  const store = await openStore(cfg);
  try {
    // The run writes audit entries: with another key they would break the chain.
    await assertStoreKey(store, keyring, { record: false });
    const r = await runRetention(store, keyring.auditKey(), cfg.retention, { dryRun: opts.dryRun });
    const verb = r.dryRun ? 'would remove' : 'removed';
    out(`retention ${r.dryRun ? 'dry run' : 'run'}:`);
    out(`  change log and tombstones older than ${cfg.retention.changeLogDays} days (before ${r.before.changeLog}): ${verb} ${r.changeLog}`);
    out(`  audit log entries older than ${cfg.retention.auditMonths} months (before ${r.before.auditLog}): ${verb} ${r.auditLog}${r.auditLog && !r.dryRun ? ' (a checkpoint entry keeps the chain verifiable)' : ''}`);
    out(`  webhook deliveries, delivered or dead, older than ${cfg.retention.webhookDeliveryDays} days (before ${r.before.webhookDeliveries}): ${verb} ${r.webhookDeliveries}`);
    out(r.dryRun ? 'nothing was removed (dry run)' : 'recorded in the audit log (kind retention)');
    return 0;
  } finally {
    await store.close();
  }
}
