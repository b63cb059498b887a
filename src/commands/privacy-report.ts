/**
 * `rostergate privacy-report`: the privacy leaflet and record of processing activities, generated
 * from the configuration and the schema (src/privacy/report.ts), as Markdown or a standalone HTML page.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import { buildReportModel, renderReport, REPORT_FORMATS, type ReportFormat } from '../privacy/report.ts';
import { setupPrivacy } from '../graphql/privacy.ts';
import { demoReportConfig } from '../demo/demo.ts';
import { loadConfig } from '../config/config.ts';

export async function privacyReportCommand(opts: { config?: string; demo?: boolean; format: string; out?: string }): Promise<void> {
  // commander checks --format against the choices; this keeps the function honest when called directly.
  if (!(REPORT_FORMATS as readonly string[]).includes(opts.format)) {
    throw new RostergateError('CONFIG_INVALID', `unknown format "${opts.format}" (formats: ${REPORT_FORMATS.join(', ')})`);
  }
  if (opts.demo && opts.config) throw new RostergateError('CONFIG_INVALID', 'pass either --demo or --config, not both');
  const cfg = opts.demo ? demoReportConfig() : loadConfig(opts.config, 'privacy-report', '--demo for the demo\'s configuration');
  // The report reads no keys: a throwaway key ring spares it the master key (which it must not need to describe the policy).
  const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(randomBytes(32), cfg.privacy.tenant) });
  const text = renderReport(buildReportModel(cfg, privacy), opts.format as ReportFormat);
  if (!opts.out) {
    process.stdout.write(text);
    return;
  }
  try {
    writeFileSync(opts.out, text);
  } catch (e) {
    throw new RostergateError('DATA_FOLDER', `cannot write ${opts.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  process.stdout.write(`wrote the privacy report (${opts.format}) to ${opts.out}\n`);
}
