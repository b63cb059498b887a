/**
 * Where a timed stretch's CPU went: this process's (all its threads: JavaScript, garbage collection,
 * SQLite, the checkpoint thread) and, on Linux, the whole machine's from /proc/stat. On a machine
 * whose PostgreSQL server runs beside the bench, the machine's busy time less the process's is
 * about the server's, and its idle time is what neither side used: work that waited on the other.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface CpuSpent {
  wallSeconds: number;
  processSeconds: number;
  /** Core-seconds the machine was busy (undefined where /proc/stat cannot be read). */
  machineSeconds: number | undefined;
  cores: number;
}

/** Busy core-milliseconds since boot (user, nice, system, irq, softirq; not idle or iowait). */
function machineBusyMs(): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // USER_HZ is 100 on every Linux this runs on: a tick is 10 ms.
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * 10;
  } catch {
    return undefined;
  }
}

/** Starts a meter; the returned function says what was spent since. */
export function cpuMeter(): () => CpuSpent {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const m0 = machineBusyMs();
  return () => {
    const c = process.cpuUsage(c0);
    const m1 = machineBusyMs();
    return {
      wallSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
      processSeconds: (c.user + c.system) / 1e6,
      machineSeconds: m0 === undefined || m1 === undefined ? undefined : (m1 - m0) / 1000,
      cores: availableParallelism(),
    };
  };
}

/** One line: the process's CPU and, where known, the rest of the machine's and what stayed idle. */
export function describeCpu(s: CpuSpent, other = 'the rest of the machine'): string {
  const available = s.wallSeconds * s.cores;
  const process = `this process ${s.processSeconds.toFixed(1)} s of CPU in ${s.wallSeconds.toFixed(1)} s`;
  if (s.machineSeconds === undefined) return process;
  const rest = Math.max(0, s.machineSeconds - s.processSeconds);
  const idle = Math.max(0, available - s.machineSeconds);
  return `${process}, ${other} ${rest.toFixed(1)} s, idle ${idle.toFixed(1)} of ${available.toFixed(1)} core-seconds (${Math.round((100 * idle) / available)} %)`;
}
