/**
 * The Chromium the browser tests drive (through playwright-core): the Debian package `chromium`,
 * which .ci/chromium.sh installs and names in ROSTERGATE_CHROMIUM. In CI a missing browser is an
 * error, as a missing PostgreSQL is for the store suites; elsewhere the browser tests are reported
 * as skipped and one line says where the browser was looked for.
 */
import { existsSync } from 'node:fs';
import { describe } from 'vitest';

const candidates = process.env.ROSTERGATE_CHROMIUM ? [process.env.ROSTERGATE_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** The browser's executable, or undefined where there is none. */
export const chromiumPath: string | undefined = candidates.find((p) => existsSync(p));

if (!chromiumPath) {
  const message = `no Chromium at ${candidates.join(' or ')} (install the Debian package chromium, or set ROSTERGATE_CHROMIUM): the browser tests are skipped`;
  if (process.env.CI) throw new Error(`CI runs the browser tests: ${message.replace(/: the browser tests are skipped$/, '')} (see .ci/chromium.sh)`);
  console.warn(`[browser] ${message}`);
}

/** `describe` for a suite that drives Chromium: skipped, with the line above, where there is none. */
export const describeBrowser = describe.skipIf(!chromiumPath);

/** Chromium refuses to start its sandbox as root (CI containers, this machine): only there is it turned off. */
export const chromiumArgs = (): string[] => (process.getuid?.() === 0 ? ['--no-sandbox'] : []);
