/**
 * The OneRoster sandbox on a thread of its own, for the end-to-end sync figures: a vendor is
 * another machine, so the sandbox's rendering and JSON should not take the syncing thread's CPU.
 * The worker generates the same district (the generator is deterministic for given options) and
 * applies the bench's changes to it when asked.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RosterDataset } from '../src/demo/dataset.ts';
import type { DistrictOptions } from '../src/demo/generator.ts';
import { prepareIndexes, startSandboxServer } from '../connectors/sandbox-kit.ts';
import { oneRosterSandboxApp } from '../connectors/oneroster/sandbox.ts';

type Op = { op: 'touch'; share: number } | { op: 'close' };
type Request = Op & { id: number };
type Reply = { id: number; value?: Touched; error?: string } | { ready: string };

/** What a touch changed, and how long the sandbox then took to re-index the district. */
export interface Touched {
  changed: number;
  indexSeconds: number;
}

export interface SandboxWorker {
  /** Base URL of the OneRoster sandbox (…/oneroster). */
  url: string;
  /**
   * Changes `share` of the students in the worker's district, then has the sandbox re-index it
   * (`prepareIndexes`: as a vendor's indexes would be by the time anyone asks), so a sync timed
   * afterwards measures the gateway and the sandbox's delta pages, not the emulator's re-indexing.
   */
  touchStudents(share: number): Promise<Touched>;
  close(): Promise<void>;
}

export async function startSandboxWorker(district: DistrictOptions): Promise<SandboxWorker> {
  // A worker does not inherit the main thread's TypeScript loader: its first module registers tsx itself.
  const self = new URL(import.meta.url).href;
  const boot = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(self)});`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), { workerData: { role: 'bench-sandbox', district } });
  const pending = new Map<number, { resolve: (v: Touched) => void; reject: (e: Error) => void }>();
  let next = 0;
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: Reply) => {
      if ('ready' in m) return resolve(m.ready);
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error));
      else p?.resolve(m.value ?? { changed: 0, indexSeconds: 0 });
    });
  });
  const call = (req: Op) =>
    new Promise<Touched>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
  return {
    url,
    touchStudents: (share) => call({ op: 'touch', share }),
    async close() {
      await call({ op: 'close' });
      await worker.terminate();
    },
  };
}

/** Changes `share` of the students (a family name, as after a marriage): what an incremental sync then reads. */
export function touchStudents(dataset: RosterDataset, share: number): number {
  const students = dataset.list('person').filter((p) => p.data.roles.includes('student'));
  const every = Math.max(1, Math.round(1 / share));
  let n = 0;
  for (let i = 0; i < students.length; i += every, n++) {
    const p = students[i]!;
    dataset.upsert('person', p.key, { familyName: `${p.data.familyName}-Bench${n}` });
  }
  return n;
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'bench-sandbox') {
  const dataset = RosterDataset.generate((workerData as { district: DistrictOptions }).district);
  const sandbox = await startSandboxServer({ dataset, apps: [oneRosterSandboxApp] });
  parentPort!.on('message', async (m: Request) => {
    try {
      if (m.op === 'touch') {
        const changed = touchStudents(dataset, m.share);
        const t = process.hrtime.bigint();
        prepareIndexes(dataset);
        parentPort!.postMessage({ id: m.id, value: { changed, indexSeconds: Number(process.hrtime.bigint() - t) / 1e9 } });
      }
      else {
        await sandbox.close();
        parentPort!.postMessage({ id: m.id });
      }
    } catch (e) {
      parentPort!.postMessage({ id: m.id, error: (e as Error).message });
    }
  });
  parentPort!.postMessage({ ready: sandbox.urlOf('/oneroster') });
}
