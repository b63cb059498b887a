/**
 * What the observability tests (metrics, traces) watch: a private gateway over a synced district on
 * a store of the given kind, and a Clever sandbox with a second district for a sync to read.
 */
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverSandbox } from '../../connectors/clever/index.ts';
import { privateGateway, TEST_MASTER_KEY, type PrivateGateway } from './privacy.ts';
import type { StoreKind } from './stores.ts';

export interface Observed {
  pgw: PrivateGateway;
  /** The district the sandbox serves (not the gateway's). */
  ds: RosterDataset;
  sandbox: RunningSandbox;
  close(): Promise<void>;
}

export async function observedDeployment(kind: StoreKind, config?: Record<string, unknown>): Promise<Observed> {
  const pgw = await privateGateway({ students: 30, teachers: 3, classes: 4, schools: 1 }, new KeyRing(TEST_MASTER_KEY, 'test'), { store: kind, config });
  const ds = RosterDataset.generate({ students: 40, teachers: 3, classes: 4, schools: 1 });
  const sandbox = await startSandboxServer({ dataset: ds, apps: [cleverSandbox()] });
  return {
    pgw, ds, sandbox,
    async close() {
      await sandbox.close();
      await pgw.close();
    },
  };
}
