/**
 * bench/cpu.ts: what the sync bench prints about where a sync's CPU went. The machine's figure
 * comes from /proc/stat (Linux, where CI runs); elsewhere only the process's is printed.
 */
import { describe, expect, it } from 'vitest';
import { cpuMeter, describeCpu } from '../../bench/cpu.ts';

/** Works until this process has used `ms` of CPU (by CPU, not the clock: a loaded machine may preempt it). */
function burn(ms: number): void {
  const from = process.cpuUsage();
  let x = 0;
  for (;;) {
    for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + i);
    const c = process.cpuUsage(from);
    if ((c.user + c.system) / 1000 >= ms) break;
  }
  expect(x).toBeGreaterThan(0);
}

describe('bench/cpu.ts', () => {
  it('counts this process\'s CPU while it works, and not while it waits', async () => {
    const meter = cpuMeter();
    burn(300);
    await new Promise((r) => setTimeout(r, 300));
    const s = meter();
    expect(s.wallSeconds).toBeGreaterThanOrEqual(0.45);
    expect(s.processSeconds).toBeGreaterThanOrEqual(0.3);
    // The wait cost nothing: well under the wall time on one core.
    expect(s.processSeconds).toBeLessThan(s.wallSeconds * 0.9);
    expect(s.cores).toBeGreaterThanOrEqual(1);
  });

  it.runIf(process.platform === 'linux')('reads the machine\'s busy time, which includes this process\'s', () => {
    const meter = cpuMeter();
    burn(300);
    const s = meter();
    expect(s.machineSeconds).toBeDefined();
    // Ticks of 10 ms on both sides of the stretch: allow two.
    expect(s.machineSeconds!).toBeGreaterThanOrEqual(s.processSeconds - 0.02);
  });

  it('says what the rest of the machine did and what stayed idle, or only the process where the machine is unknown', () => {
    const line = describeCpu({ wallSeconds: 10, processSeconds: 6, machineSeconds: 14, cores: 2 }, 'the server');
    expect(line).toBe('this process 6.0 s of CPU in 10.0 s, the server 8.0 s, idle 6.0 of 20.0 core-seconds (30 %)');
    expect(describeCpu({ wallSeconds: 10, processSeconds: 6, machineSeconds: undefined, cores: 2 })).toBe('this process 6.0 s of CPU in 10.0 s');
  });
});
