/**
 * The privacy report is generated from the configuration and the schema: for the demo it names each
 * purpose with its legal basis and says how each field reaches it; a change to the policy changes
 * the report; configured text is escaped; the committed demo report is not stale.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { demoConfig, demoReportConfig } from '../../src/demo/demo.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { DEMO_CLIENTS, DEMO_PRIVACY, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { buildReportModel, renderReport, type ReportModel, type Treatment } from '../../src/privacy/report.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import type { RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { parse as parseYaml } from 'yaml';
import { tempDir } from '../support/stores.ts';

const base = buildUnifiedSchema();
const report = (cfg: Config): ReportModel => buildReportModel(cfg, setupPrivacy(cfg, base, { keyring: new KeyRing(Buffer.alloc(32, 7), cfg.privacy.tenant) }));
const md = (cfg: Config) => renderReport(report(cfg), 'md');
/** The demo's config with some of its raw parts replaced (sources kept by id and type). */
function demoWith(raw: { purposes?: object; clients?: object[]; privacy?: object; changeFeed?: object; retention?: object }): Config {
  const demo = demoReportConfig();
  const cfg = parseConfig({ privacy: DEMO_PRIVACY, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS, ...raw }, 'test config');
  return { ...cfg, sources: demo.sources };
}
const treatment = (m: ReportModel, purpose: string, coord: string): Treatment | undefined =>
  m.purposes.find((p) => p.id === purpose)?.personal.find((r) => r.coordinate === coord)?.treatment;

describe('privacy report of the demo configuration', () => {
  const m = report(demoReportConfig());
  const text = renderReport(m, 'md');

  it('names each demo purpose with its legal basis and its clients', () => {
    expect(m.purposes.map((p) => p.id)).toEqual(Object.keys(DEMO_PURPOSES));
    for (const [id, p] of Object.entries(DEMO_PURPOSES)) {
      expect(m.purposes.find((x) => x.id === id)!.legalBasis).toBe(p.legalBasis);
      expect(text).toContain(`| Legal basis | ${p.legalBasis.replace(/([()])/g, '$1')} |`);
    }
    expect(m.purposes.find((p) => p.id === 'analytics')!.clients).toEqual([{ id: 'analytics-demo', description: 'demo data team' }]);
  });

  it('says analytics gets Person.id pseudonymised, birthYear generalised from birthDate, no email, and no Organization.people', () => {
    expect(treatment(m, 'analytics', 'Person.id')).toEqual({ kind: 'pseudonymised', domain: 'analytics' });
    expect(treatment(m, 'analytics', 'Demographics.birthYear')).toEqual({ kind: 'generalised', from: 'Demographics.birthDate', exactToo: false });
    expect(treatment(m, 'analytics', 'Demographics.birthDate')).toEqual({ kind: 'denied' });
    expect(treatment(m, 'analytics', 'Person.email')).toEqual({ kind: 'denied' });
    expect(m.purposes.find((p) => p.id === 'analytics')!.withheld).toContainEqual({ coordinate: 'Organization.people', reveals: 'Person.organizations' });
    // roster-sync receives the exact birth date, so its birth year is not "instead of" it.
    expect(treatment(m, 'roster-sync', 'Demographics.birthYear')).toEqual({ kind: 'generalised', from: 'Demographics.birthDate', exactToo: true });
    expect(treatment(m, 'roster-sync', 'Person.photoUrl')).toEqual({ kind: 'denied' });
    expect(text).toContain('| `Person.id` | identifier | pseudonymised: a keyed pseudonym (HMAC-SHA256) in domain `analytics`; the real id is never shown |');
    expect(text).toContain('| `Demographics.birthYear` | quasi-identifier | generalised: a coarser form of `Demographics.birthDate`; the exact value is not received |');
    expect(text).toContain('- `Organization.people` — would tell a person’s `Person.organizations`');
  });

  it('says special categories are not stored: dropped at ingest from every source that delivers them', () => {
    const special = m.categories.find((c) => c.category === 'SPECIAL')!;
    expect(special.stored).toEqual([]);
    expect(special.notStored).toContain('Demographics.iep');
    expect(text).toMatch(/Special and sensitive categories \([^)]*\): not stored — dropped on arrival/);
    const clever = m.sources.find((s) => s.id === 'demo-clever')!.records.find((r) => r.type === 'Demographics')!;
    expect(clever.dropped).toContain('Demographics.freeReducedLunch');
    expect(clever.stored).toEqual(['Demographics.birthDate', 'Demographics.postalCode', 'Demographics.sex']);
    expect(clever.links).toEqual(['Person']);
  });

  it('states the configured retention periods, and follows a change of them', () => {
    expect(m.retention[0]).toMatchObject({ period: '30 days' });
    const audit = m.retention.find((r) => r.kind === 'Audit log')!;
    expect(audit.period).toBe('13 months');
    expect(m.retention.find((r) => r.kind === 'Webhook deliveries')!.period).toBe('30 days');
    expect(text).toContain('- Audit log: 13 months.');
    expect(report(demoWith({ changeFeed: { retentionDays: 7 } })).retention[0]!.period).toBe('7 days');
    const changed = report(demoWith({ retention: { changeLogDays: 2, auditMonths: 24, webhookDeliveryDays: 1, runEveryHours: 0 } }));
    expect(changed.retention.map((r) => r.period).slice(0, 5)).toEqual(['2 days', undefined, '24 months', undefined, '1 day']);
    expect(changed.retention.find((r) => r.kind === 'Audit log')!.how).toContain('the scheduled run in `serve` is off');
  });

  it('names controller, processor, locations and sub-processors as configured, and says when they are not', () => {
    expect(text).toContain('Rostergate Demo Vendor B.V., support@vendor.example.org');
    expect(text).toContain('| Example Hosting B.V. | Hosting of the gateway and its database | Amsterdam, Netherlands (EU) |');
    const bare = md(demoWith({ privacy: { tenant: 't' } }));
    expect(bare).toContain('Responsible for your data (controller): not configured (`privacy.controller`)');
    expect(bare).toContain('No processing location is configured (`privacy.processingLocations`).');
    expect(bare).toContain('No sub-processors are configured.');
  });

  it('reports the demo exactly as `npm start` configures it (sources by id and type, purposes, privacy keys)', async () => {
    const dir = tempDir();
    const sandbox = { urlOf: (p: string) => `http://127.0.0.1:9${p}` } as RunningSandbox;
    const real = await demoConfig(sandbox, RosterDataset.generate({ students: 10, teachers: 2, classes: 2, schools: 3 }), dir);
    expect(md(real)).toBe(text);
  });

  it('docs/privacy-report-demo.md is the current report (regenerate: npm run report:demo)', () => {
    const committed = readFileSync(join(import.meta.dirname, '../../docs/privacy-report-demo.md'), 'utf8');
    expect(committed).toBe(text);
  });
});

describe('the report follows the policy', () => {
  const before = md(demoReportConfig());

  it('allowing Person.email to analytics shows it allowed', () => {
    const purposes = { ...DEMO_PURPOSES, analytics: { ...DEMO_PURPOSES.analytics, fields: { ...DEMO_PURPOSES.analytics.fields, 'Person.email': 'allow' } } };
    const m = report(demoWith({ purposes }));
    expect(treatment(m, 'analytics', 'Person.email')).toEqual({ kind: 'allowed' });
    const after = renderReport(m, 'md');
    expect(after).not.toBe(before);
    expect(after).toContain('| `Person.email` | direct | allowed (the value itself) |');
  });

  it('a new purpose and its client appear, with their legal basis', () => {
    const purposes = { ...DEMO_PURPOSES, 'attendance-app': { description: 'Takes attendance', legalBasis: 'Legal obligation (art. 6(1)(c))', categories: { NONE: 'allow', IDENTIFIER: 'pseudonymise' } } };
    const clients = [...DEMO_CLIENTS, { id: 'attend', purpose: 'attendance-app' }];
    const m = report(demoWith({ purposes, clients }));
    const p = m.purposes.find((x) => x.id === 'attendance-app')!;
    expect(p).toMatchObject({ legalBasis: 'Legal obligation (art. 6(1)(c))', clients: [{ id: 'attend' }], extracts: false });
    expect(renderReport(m, 'md')).toContain('#### Purpose `attendance-app`');
  });

  it('granting a special category to a purpose makes it stored, and no longer dropped at ingest', () => {
    const purposes = { ...DEMO_PURPOSES, admin: { ...DEMO_PURPOSES.admin, fields: { 'Demographics.iep': 'allow' } } };
    const m = report(demoWith({ purposes }));
    expect(m.categories.find((c) => c.category === 'SPECIAL')!.stored).toEqual(['Demographics.iep']);
    expect(m.sources.find((s) => s.id === 'demo-clever')!.records.find((r) => r.type === 'Demographics')!.dropped).not.toContain('Demographics.iep');
    expect(renderReport(m, 'md')).toMatch(/Special and sensitive categories \([^)]*\): stored in part; not stored: /);
    expect(renderReport(m, 'md')).toContain('- Receives special categories: `Demographics.iep`');
  });

  it('allowing a school to analytics lifts its withheld relations', () => {
    const purposes = { ...DEMO_PURPOSES, analytics: { ...DEMO_PURPOSES.analytics, fields: { ...DEMO_PURPOSES.analytics.fields, 'Person.organizations': 'allow' } } };
    const m = report(demoWith({ purposes }));
    expect(m.purposes.find((p) => p.id === 'analytics')!.withheld.map((w) => w.coordinate)).not.toContain('Organization.people');
    expect(treatment(m, 'analytics', 'Person.organizations')).toEqual({ kind: 'allowed' });
  });

  it('refuses a config without purposes, saying why', () => {
    expect(() => report({ ...parseConfig({}), file: 'empty.yaml' })).toThrow(/empty\.yaml: no purposes configured, so there is nothing to report on/);
  });
});

describe('rendering', () => {
  const evil = '<script>alert(1)</script> & "quotes" | pipes *stars*';
  const purposes = { ...DEMO_PURPOSES, analytics: { ...DEMO_PURPOSES.analytics, description: evil } };

  it('HTML is one standalone page that escapes every configured value', () => {
    const html = renderReport(report(demoWith({ purposes, privacy: { ...DEMO_PRIVACY, controller: { name: '<b>Board</b>', contact: 'a@example.org' } } })), 'html');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<b>Board');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;');
    // Nothing external: no links, scripts or stylesheets to fetch, and a policy that forbids them.
    expect(html).not.toMatch(/<(script|link|img|iframe)\b|\bsrc=|href=/i);
    expect(html).toContain("default-src 'none'");
  });

  it('Markdown escapes configured text so it cannot become markup or break a table', () => {
    const text = renderReport(report(demoWith({ purposes })), 'md');
    expect(text).not.toContain('<script>');
    expect(text).toContain('| Description | &lt;script&gt;alert(1)&lt;/script&gt; & "quotes" \\| pipes \\*stars\\* |');
  });
});

describe('privacy config keys for the report', () => {
  it('the example in docs/privacy.md parses, and reaches the report', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/privacy.md'), 'utf8');
    const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('subProcessors:'))!;
    const privacy = (parseYaml(block) as { privacy: object }).privacy;
    const m = report(demoWith({ privacy }));
    expect(m.processor).toEqual({ name: 'Example Vendor B.V.', contact: 'support@vendor.example.org', dpo: 'dpo@vendor.example.org' });
    expect(m.subProcessors).toEqual([{ name: 'Example Hosting B.V.', purpose: 'Hosting of the gateway and its database', location: 'Amsterdam, Netherlands (EU)' }]);
  });

  it('refuses unknown or incomplete keys, naming the path', () => {
    expect(() => parseConfig({ privacy: { controller: { name: 'X', contact: 'c', phone: '1' } } }, 'c.yaml')).toThrow(/c\.yaml: privacy\.controller: unknown key\(s\) phone/);
    expect(() => parseConfig({ privacy: { processor: { name: 'X' } } }, 'c.yaml')).toThrow(/c\.yaml: privacy\.processor\.contact: /);
    expect(() => parseConfig({ privacy: { subProcessors: [{ name: 'X', purpose: 'p' }] } }, 'c.yaml')).toThrow(/privacy\.subProcessors\.0\.location/);
  });
});
