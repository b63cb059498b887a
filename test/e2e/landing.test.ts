/**
 * The query console at `/`, as a browser would use it with no internet: the page is fetched from
 * the gateway, its own script runs against a minimal stand-in for the few DOM elements it touches,
 * and its requests go to the real gateway over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInNewContext } from 'node:vm';
import { request } from 'undici';
import { createHash } from 'node:crypto';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { serveStore } from '../../src/runtime.ts';
import { createLogger } from '../../src/log.ts';
import type { RunningGateway } from '../../src/server/gateway.ts';

const unescape = (s: string) => s.replace(/&(lt|gt|quot|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', amp: '&' })[e]!);

class Element {
  value = '';
  textContent = '';
  onclick?: () => Promise<void> | void;
  onchange?: () => void;
}
class Select extends Element {
  constructor(readonly options: { value: string; text: string }[]) {
    super();
    this.value = options[0]?.value ?? '';
  }
  get selectedIndex() {
    return this.options.findIndex((o) => o.value === this.value);
  }
  set selectedIndex(i: number) {
    this.value = this.options[i]!.value;
  }
}

/** Loads the console as a browser would and returns its elements; `stored` is what localStorage remembers. */
async function openConsole(url: string, stored: Record<string, string> = {}) {
  const html = await (await request(`${url}/`)).body.text();
  const select = /<select id="demo">([\s\S]*?)<\/select>/.exec(html);
  const options = [...(select?.[1] ?? '').matchAll(/<option value="([^"]*)">([^<]*)<\/option>/g)].map((m) => ({ value: unescape(m[1]!), text: unescape(m[2]!) }));
  const els: Record<string, Element> = { key: new Element(), run: new Element(), status: new Element(), q: new Element(), v: new Element(), out: new Element() };
  if (select) els.demo = new Select(options);
  els.q!.value = unescape(/<textarea id="q"[^>]*>([\s\S]*?)<\/textarea>/.exec(html)![1]!);
  els.v!.value = unescape(/<textarea id="v"[^>]*>([\s\S]*?)<\/textarea>/.exec(html)![1]!);
  const storage = { ...stored };
  runInNewContext(/<script>([\s\S]*?)<\/script>/.exec(html)![1]!, {
    document: { getElementById: (id: string) => els[id] ?? null },
    localStorage: { getItem: (k: string) => storage[k] ?? null, setItem: (k: string, v: string) => void (storage[k] = v) },
    // Relative to the page, as in a browser.
    fetch: (path: string, init: RequestInit) => fetch(new URL(path, url), init),
    performance,
    JSON,
  });
  return { els, options, storage };
}

describe('the query console', () => {
  let g: PrivateGateway;
  let gw: RunningGateway;
  beforeAll(async () => {
    g = await privateGateway();
    const demoKeys = g.config.clients.map((c) => ({ client: `${c.id} (${c.purpose})`, key: g.keys[c.id]! }));
    gw = await serveStore(g.store, g.config, createLogger({ level: 'silent' }), { port: 0, privacy: g.privacy, demoKeys, webhooks: false });
  });
  afterAll(async () => {
    await gw?.close();
    await g?.close();
  });

  it('offers the demo keys, starts with the first, and runs the example query with it', async () => {
    const { els, options, storage } = await openConsole(gw.url);
    expect(options.map((o) => o.text)).toEqual(['—', ...g.config.clients.map((c) => `${c.id} (${c.purpose})`)]);
    const first = g.config.clients[0]!;
    expect(els.key!.value).toBe(g.keys[first.id]);
    await els.run!.onclick!();
    expect(els.status!.textContent).toMatch(/^200 · \d+ ms$/);
    const out = JSON.parse(els.out!.textContent);
    expect(out.errors).toBeUndefined();
    expect(out.data.schools.edges[0].node.classes.edges[0].node.enrollments.edges[0].node.person.givenName).toEqual(expect.any(String));
    expect(storage['rg-key']).toBe(g.keys[first.id]);
  });

  it('switches clients with the picker: the analytics key gets its own purpose’s answer', async () => {
    const { els } = await openConsole(gw.url);
    const analytics = g.config.clients.find((c) => c.purpose === 'analytics')!;
    els.demo!.value = g.keys[analytics.id]!;
    els.demo!.onchange!();
    expect(els.key!.value).toBe(g.keys[analytics.id]);
    await els.run!.onclick!();
    expect(els.status!.textContent).toMatch(/^400 /);
    // The example walks school → classes: analytics may not join people to a school from any side.
    expect(els.out!.textContent).toMatch(/the purpose \\"analytics\\" withholds Organization\.classes, since it would tell a person's Person\.organizations/);
  });

  it('keeps a remembered key that is still one of the demo keys, and replaces a stale one', async () => {
    const analytics = g.config.clients.find((c) => c.purpose === 'analytics')!;
    const kept = await openConsole(gw.url, { 'rg-key': g.keys[analytics.id]! });
    expect(kept.els.key!.value).toBe(g.keys[analytics.id]);
    expect(kept.els.demo!.value).toBe(g.keys[analytics.id]);
    const stale = await openConsole(gw.url, { 'rg-key': 'rgk_from-an-earlier-demo' });
    expect(stale.els.key!.value).toBe(g.keys[g.config.clients[0]!.id]);
  });

  it('is served with a CSP that allows exactly its own inline script and style, and no framing, sniffing or referrer', async () => {
    const r = await request(`${gw.url}/`);
    const html = await r.body.text();
    expect(r.headers).toMatchObject({ 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    const csp = Object.fromEntries(String(r.headers['content-security-policy']).split(/;\s*/).map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
    const sha = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;
    // What a browser checks before running the page's script (the console works only if it matches).
    expect(csp['script-src']).toEqual([sha(/<script>([\s\S]*?)<\/script>/.exec(html)![1]!)]);
    expect(csp['style-src']).toEqual([sha(/<style>([\s\S]*?)<\/style>/.exec(html)![1]!)]);
    expect(csp).toMatchObject({ 'default-src': ["'none'"], 'connect-src': ["'self'"], 'frame-ancestors': ["'none'"], 'base-uri': ["'none'"] });
    expect(String(r.headers['content-security-policy'])).not.toMatch(/unsafe-inline|unsafe-eval/);
    // Nothing in the page needs more: no inline handlers or style attributes, no external resources.
    expect(html).not.toMatch(/\son[a-z]+=|\sstyle=|\ssrc=|<link/i);
  });

  it('without demo keys has no picker and sends the key typed in', async () => {
    const { els } = await openConsole(g.gw.url);
    expect(els.demo).toBeUndefined();
    expect(els.key!.value).toBe('');
    await els.run!.onclick!();
    expect(els.status!.textContent).toMatch(/^401 /);
    els.key!.value = g.keys[g.config.clients[0]!.id]!;
    await els.run!.onclick!();
    expect(els.status!.textContent).toMatch(/^200 /);
  });
});
