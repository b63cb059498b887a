/**
 * Security headers. Every answer: no MIME sniffing, no framing, no referrer. An HTML page also gets
 * a Content-Security-Policy that allows the sources it names (the console: scripts and styles from
 * this origin, fonts and images as data: URIs inside GraphiQL's style sheet) plus any inline
 * `<script>` / `<style>` by hash, computed from the page as served (so an edit to the page cannot
 * drift from its policy), and nothing else: no eval, no inline code otherwise, no plugins, requests
 * only to this origin, no framing.
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

/** Where a page may load each kind of resource from, beyond its own inline elements (e.g. `'self'`, `data:`). */
export interface PageSources {
  script?: string[];
  style?: string[];
  font?: string[];
  img?: string[];
}

/** The headers of an HTML page: its inline `<script>` / `<style>` elements by hash, plus `sources`. */
export function pageHeaders(html: string, sources: PageSources = {}): Record<string, string> {
  const list = (xs: string[]) => xs.join(' ') || "'none'";
  const csp = [
    "default-src 'none'",
    `script-src ${list([...(sources.script ?? []), ...hashes(html, 'script')])}`,
    `style-src ${list([...(sources.style ?? []), ...hashes(html, 'style')])}`,
    ...(sources.font ? [`font-src ${list(sources.font)}`] : []),
    ...(sources.img ? [`img-src ${list(sources.img)}`] : []),
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { ...BASE, 'content-security-policy': csp };
}
