/**
 * Security headers. Every answer: no MIME sniffing, no framing, no referrer. The console page also
 * gets a Content-Security-Policy that allows exactly its own inline script and style, by hash,
 * computed from the page as served (so an edit to the page cannot drift from its policy), and
 * nothing else: no other script, no plugins, requests only to this origin, no framing.
 */
import { createHash } from 'node:crypto';

const BASE: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** Set on every answer (JSON, CSV, NDJSON): opened in a browser, none of them may run or load anything. */
export const API_HEADERS: Readonly<Record<string, string>> = { ...BASE, 'content-security-policy': "default-src 'none'; frame-ancestors 'none'" };

const hashes = (html: string, tag: 'script' | 'style') =>
  [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => `'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`);

/** The headers of an HTML page whose scripts and styles are inline `<script>` / `<style>` elements. */
export function pageHeaders(html: string): Record<string, string> {
  const csp = [
    "default-src 'none'",
    `script-src ${hashes(html, 'script').join(' ') || "'none'"}`,
    `style-src ${hashes(html, 'style').join(' ') || "'none'"}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { ...BASE, 'content-security-policy': csp };
}
