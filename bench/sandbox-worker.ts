/**
 * The OneRoster sandbox on a thread of its own, for the end-to-end sync figures: a vendor is
 * another machine, so the sandbox's rendering and JSON should not take the syncing thread's CPU.
 * The worker generates the same district (the generator is deterministic for given options) and
 * applies the bench's changes to it when asked.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RosterDataset } from '../src/demo/dataset.ts';
import type { DistrictOptions } from '../src/demo/generator.ts';
import { startSandboxServer } from '../connectors/sandbox-kit.ts';
import { oneRosterSandboxApp } from '../connectors/oneroster/sandbox.ts';

type Op = { op: 'touch'; share: number } | { op: 'close' };
type Request = Op & { id: number };
type Reply = { id: number; value?: number; error?: string } | { ready: string };

export interface SandboxWorker {
  /** Base URL of the OneRoster sandbox (…/oneroster). */
  url: string;
  /** Changes `share` of the students in the worker's district; resolves to how many. */
  touchStudents(share: number): Promise<number>;
  close(): Promise<void>;
}

export async function startSandboxWorker(district: DistrictOptions): Promise<SandboxWorker> {
  // A worker does not inherit the main thread's TypeScript loader: its first module registers tsx itself.
  const self = new URL(import.meta.url).href;
  const boot = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(self)});`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), { workerData: { role: 'bench-sandbox', district } });
  const pending = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
  let next = 0;
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: Reply) => {
      if ('ready' in m) return resolve(m.ready);
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error));
      else p?.resolve(m.value ?? 0);
    });
  });
  const call = (req: Op) =>
    new Promise<number>((resolve, reject) => {
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
      if (m.op === 'touch') parentPort!.postMessage({ id: m.id, value: touchStudents(dataset, m.share) });
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
