/**
 * Source schedules (connectors/schedule.ts): what `sources[].schedule` accepts, the errors that
 * name what is wrong, and the slots an interval or a cron expression in a time zone defines.
 */
import { describe, expect, it } from 'vitest';
import { dueSlot, latestSlot, nextSlot, scheduleSchema, type Schedule } from '../../connectors/schedule.ts';
import { parseConfig } from '../../src/config/config.ts';
import { sandboxSourceConfig } from '../../connectors/clever/index.ts';

const clever = (schedule: unknown) => ({ id: 'sis', ...sandboxSourceConfig('http://127.0.0.1:1/clever'), schedule });
const refusal = (schedule: unknown) => {
  try {
    parseConfig({ server: { openAccess: true }, sources: [clever(schedule)] }, 'rg.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the schedule should have been refused');
};

describe('sources[].schedule', () => {
  it('accepts an interval or a cron expression with a time zone, on every source type, and validates again unchanged', () => {
    const cfg = parseConfig({ server: { openAccess: true }, sources: [clever({ every: '15m' }), { ...clever({ cron: '0 3 * * 1-5', timezone: 'Europe/Berlin' }), id: 'sis2' }] });
    expect(cfg.sources.map((s) => s.schedule)).toEqual([{ every: '15m' }, { cron: '0 3 * * 1-5', timezone: 'Europe/Berlin' }]);
    // A tenant's sources are stored validated and read back through the same schema.
    expect(parseConfig({ server: { openAccess: true }, sources: cfg.sources }).sources).toEqual(cfg.sources);
    const csv = parseConfig({ server: { openAccess: true }, sources: [{ id: 'drop', type: 'sds-csv', path: '/tmp/x', schedule: { cron: '@daily' } }] });
    expect(csv.sources[0]!.schedule).toEqual({ cron: '@daily' });
  });

  it('refuses what is not a schedule, naming the source, the key and the reason', () => {
    expect(refusal({ every: '15m', cron: '0 3 * * *' })).toMatch(/^rg\.yaml: sources\[0\] \(sis\): schedule: give either `every`.*not both or neither/);
    expect(refusal({})).toMatch(/not both or neither/);
    expect(refusal({ every: 'fortnightly' })).toMatch(/schedule\.every: "fortnightly" is not an interval/);
    expect(refusal({ every: '30s' })).toMatch(/schedule\.every: "30s" is shorter than the minimum of one minute/);
    expect(refusal({ every: '15m', timezone: 'UTC' })).toMatch(/schedule\.timezone: `timezone` applies to `cron` only/);
    expect(refusal({ cron: '61 * * * *' })).toMatch(/schedule\.cron: "61 \* \* \* \*" is not a cron expression/);
    expect(refusal({ cron: '0 0 3 * * *' })).toMatch(/schedule\.cron: .*5 parts/);
    expect(refusal({ cron: '0 3 * * *', timezone: 'Mars/Olympus' })).toMatch(/schedule\.timezone: "Mars\/Olympus" is not an IANA time zone/);
    expect(refusal({ cron: '0 3 * * *', at: 'noon' })).toMatch(/schedule: unknown key\(s\) at/);
  });

  it('interval slots are multiples of the interval since the epoch: every process computes the same one', () => {
    const s: Schedule = { every: '15m' };
    expect(latestSlot(s, new Date('2026-01-05T10:07:59Z'))!.toISOString()).toBe('2026-01-05T10:00:00.000Z');
    expect(latestSlot(s, new Date('2026-01-05T10:15:00Z'))!.toISOString()).toBe('2026-01-05T10:15:00.000Z');
    expect(nextSlot(s, new Date('2026-01-05T10:07:00Z'))!.toISOString()).toBe('2026-01-05T10:15:00.000Z');
    expect(latestSlot({ every: '1d' }, new Date('2026-01-05T23:59:00Z'))!.toISOString()).toBe('2026-01-05T00:00:00.000Z');
  });

  it('cron slots are read in the schedule\'s time zone, across a change of daylight saving time', () => {
    const berlin: Schedule = { cron: '0 3 * * *', timezone: 'Europe/Berlin' };
    // 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer (the clocks went forward on 29 March 2026).
    expect(latestSlot(berlin, new Date('2026-03-10T12:00:00Z'))!.toISOString()).toBe('2026-03-10T02:00:00.000Z');
    expect(latestSlot(berlin, new Date('2026-04-10T12:00:00Z'))!.toISOString()).toBe('2026-04-10T01:00:00.000Z');
    expect(nextSlot(berlin, new Date('2026-03-10T12:00:00Z'))!.toISOString()).toBe('2026-03-11T02:00:00.000Z');
    // UTC by default; a slot exactly at `now` is due now.
    expect(latestSlot({ cron: '0 3 * * *' }, new Date('2026-03-10T03:00:00Z'))!.toISOString()).toBe('2026-03-10T03:00:00.000Z');
  });

  it('a slot is due once: not again after it was taken, and missed slots are caught up by one run', () => {
    const s: Schedule = { every: '1h' };
    const now = new Date('2026-01-05T10:30:00Z');
    expect(dueSlot(s, undefined, now)!.toISOString()).toBe('2026-01-05T10:00:00.000Z');
    expect(dueSlot(s, new Date('2026-01-05T10:00:00Z'), now)).toBeUndefined();
    // Down since 06:00: one run for the latest slot, not four.
    expect(dueSlot(s, new Date('2026-01-05T06:00:00Z'), now)!.toISOString()).toBe('2026-01-05T10:00:00.000Z');
  });

  it('the schema alone accepts exactly one form', () => {
    expect(scheduleSchema.safeParse({ every: '2h' }).success).toBe(true);
    expect(scheduleSchema.safeParse({ cron: '*/5 * * * *', timezone: 'America/Chicago' }).success).toBe(true);
    expect(scheduleSchema.safeParse({ every: '2h', cron: '* * * * *' }).success).toBe(false);
  });
});
