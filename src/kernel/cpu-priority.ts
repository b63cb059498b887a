/**
 * CPU priority of the processes that sync (`rostergate sync`, `rostergate worker`): they lower
 * their own priority (a Unix nice value, `sync.nice`) so that a gateway on the same machine — the
 * demo, a small deployment, a node running a replica of each — serves first and a sync takes the
 * CPU it leaves. A sync is throughput work that can wait a few milliseconds; a request is not.
 *
 * Only ever lowered: a process already nicer (started under `nice -n 15`) keeps its own value, and
 * raising priority would need privileges a container does not have. Where the platform refuses
 * (Windows without the right, some sandboxes), the sync runs at the priority it has, with a warning.
 */
import { getPriority, setPriority } from 'node:os';

/** The nice value this process now runs at; `nice` 0 leaves it as it is. */
export function lowerCpuPriority(nice: number, warn: (msg: string) => void): number {
  const current = getPriority();
  if (nice <= current) return current;
  try {
    setPriority(nice);
    return getPriority();
  } catch (e) {
    warn(`could not lower this process's CPU priority to nice ${nice} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): it syncs at nice ${current}`);
    return current;
  }
}
