/**
 * The console in a real browser: Chromium (the Debian package, see test/support/chromium.ts) driven
 * by playwright-core, loading the demo gateway's console with every request to another host
 * blocked, as on a machine without internet. It runs each purpose's example with that purpose's
 * demo key and looks for the answer in GraphiQL's result pane; checks that the docs and autocomplete
 * follow the key's purpose schema, that a field the purpose is denied is an error, that the key
 * lives in sessionStorage only, and that a stopped gateway is reported instead of waited on.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { chromiumArgs, chromiumPath, describeBrowser } from '../support/chromium.ts';
import { startConsoleDemo, type ConsoleDemo } from '../support/console-demo.ts';
import { startGateway } from '../../src/server/gateway.ts';
import { createLogger } from '../../src/log.ts';

interface OpenConsole {
  page: Page;
  /** Requests to any host but the gateway's, which were refused. */
  blocked: string[];
  /** Uncaught script errors and CSP violations reported by the browser. */
  problems: string[];
}

// A page load, an introspection and a query take a few seconds each on a busy machine.
describeBrowser('the console in Chromium, offline', { timeout: 90_000 }, () => {
  let c: ConsoleDemo;
  let browser: Browser;
  beforeAll(async () => {
    [c, browser] = await Promise.all([startConsoleDemo(), chromium.launch({ executablePath: chromiumPath!, args: chromiumArgs() })]);
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await c?.close();
  });

  /** A fresh browser profile (empty storage) on the console at `url`, cut off from every other host. */
  async function open(url = c.gw.url): Promise<OpenConsole> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const blocked: string[] = [];
    const problems: string[] = [];
    const gateway = new URL(url).host;
    await context.route('**/*', (route) => {
      const target = new URL(route.request().url());
      if (target.host === gateway) return route.continue();
      blocked.push(target.origin);
      return route.abort('internetdisconnected');
    });
    page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    });
    await page.goto(`${url}/`);
    await page.waitForSelector('.graphiql-container');
    return { page, blocked, problems };
  }

  const status = (page: Page) => page.locator('#rg-status');
  // GraphiQL's editors are CodeMirror 5 instances, which draw only the lines in view: read and
  // write their whole text through the instance the editor element carries.
  type Editor = { CodeMirror: { getValue(): string; setValue(v: string): void } };
  const result = (page: Page) => page.evaluate(() => (document.querySelector('.result-window .CodeMirror') as unknown as Editor).CodeMirror.getValue());
  const queryEditor = (page: Page, text: string) =>
    page.evaluate((t) => (document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as Editor).CodeMirror.setValue(t), text);

  /** Picks a demo client and waits for the introspection its key makes (the purpose's schema). */
  async function pick(page: Page, purpose: string) {
    const introspected = page.waitForResponse((r) => r.url().endsWith('/graphql') && r.request().postData()!.includes('IntrospectionQuery'));
    await page.selectOption('#rg-client', { label: c.demo.keys.find((k) => k.purpose === purpose)!.client + ` (${purpose})` });
    expect((await introspected).status()).toBe(200);
  }

  async function runQuery(page: Page) {
    const answered = page.waitForResponse((r) => r.url().endsWith('/graphql') && !r.request().postData()!.includes('IntrospectionQuery'));
    await page.click('.graphiql-execute-button');
    return answered;
  }

  it('loads from the gateway alone, starts with the first demo client, its key in the headers editor and its purpose’s example', async () => {
    const { page, blocked, problems } = await open();
    const first = c.demo.keys[0]!;
    await expect.poll(() => status(page).textContent()).toMatch(/^200 · \d+ ms$/);
    expect(await page.inputValue('#rg-client')).toBe('0');
    expect(await page.locator('.graphiql-editor-tool .graphiql-editor').last().textContent()).toContain(first.key);
    const example = c.examples.find((e) => e.purpose === first.purpose)!;
    expect(await page.locator('#rg-example option:checked').textContent()).toBe(`${example.title} — ${first.purpose}`);
    expect(await page.locator('.graphiql-query-editor').textContent()).toContain(example.query.split('\n')[1]);
    expect(blocked).toEqual([]);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  // What each purpose's example answers, as seen in the result pane.
  const EXPECTED: Record<string, RegExp[]> = {
    'roster-sync': [/"givenName": "[^"]+"/, /"totalCount": \d+/],
    analytics: [/"gradeBand": "[^"]+"/, /"id": "(?!per_)[^"]+"/],
    sso: [/"personBySignIn": \{/, /"roles": \[\s*"STUDENT"\s*\]/],
    admin: [/"sources": \[/, /"changesHead": "[^"]+"/],
  };

  for (const [purpose, expected] of Object.entries(EXPECTED)) {
    it(`runs the ${purpose} example with the ${purpose} key and shows its answer`, async () => {
      const { page, blocked, problems } = await open();
      await pick(page, purpose);
      const answer = await runQuery(page);
      expect(answer.status()).toBe(200);
      expect(answer.request().headers()['x-api-key']).toBe(c.keyOf(purpose));
      // The response has arrived; GraphiQL draws it in the result pane a moment later.
      await expect.poll(() => result(page)).toMatch(/"data"|"errors"/);
      const shown = await result(page);
      for (const re of expected) expect(shown).toMatch(re);
      expect(shown).not.toMatch(/"errors"/);
      await expect.poll(() => status(page).textContent()).toMatch(/^200 · /);
      expect(blocked).toEqual([]);
      expect(problems).toEqual([]);
      await page.context().close();
    });
  }

  it('analytics: the editor knows its schema (a name is marked invalid) and running it shows the gateway’s refusal', async () => {
    const { page } = await open();
    await pick(page, 'analytics');
    await queryEditor(page, '{ people(first: 1) { edges { node { id givenName } } } }');
    // GraphiQL validates against the introspected purpose schema, where Person.givenName does not exist.
    await expect.poll(() => page.locator('.graphiql-query-editor .CodeMirror-lint-mark-error').allTextContents()).toContain('givenName');
    const answer = await runQuery(page);
    expect(answer.status()).toBe(400);
    await expect.poll(() => result(page)).toMatch(/the purpose \\"analytics\\" does not allow Person\.givenName/);
    await expect.poll(() => status(page).textContent()).toMatch(/^400 · /);
    await page.context().close();
  });

  /** A type's field names in a purpose's schema, as the gateway introspects it over HTTP. */
  async function fieldsOf(purpose: string, type: string): Promise<string[]> {
    const r = await fetch(`${c.gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': c.keyOf(purpose) }, body: JSON.stringify({ query: `{ __type(name: "${type}") { fields { name } } }` }) });
    return ((await r.json()) as { data: { __type: { fields: { name: string }[] } } }).data.__type.fields.map((f) => f.name);
  }

  it('sso: autocomplete and the docs follow the sso schema: the sign-in lookup, and of a person only what sso gets', async () => {
    const [ssoPerson, lmsPerson] = await Promise.all([fieldsOf('sso', 'Person'), fieldsOf('roster-sync', 'Person')]);
    // The check means something only if the purposes differ.
    expect(lmsPerson).toContain('givenName');
    expect(ssoPerson).not.toContain('givenName');
    const ssoQueryFields = await fieldsOf('sso', 'Query');
    expect(ssoQueryFields).toContain('personBySignIn');
    const { page } = await open();
    await pick(page, 'sso');
    await queryEditor(page, '{ pe');
    await page.click('.graphiql-query-editor .CodeMirror-line');
    await page.keyboard.press('End');
    await page.keyboard.type('r');
    await expect.poll(() => page.locator('.CodeMirror-hint').allTextContents()).toEqual(ssoQueryFields.filter((f) => f.startsWith('per')));
    await page.keyboard.press('Escape');
    await page.click('button[aria-label="Show Documentation Explorer"]');
    await page.locator('.graphiql-doc-explorer a', { hasText: /^Query$/ }).first().click();
    expect(await page.locator('.graphiql-doc-explorer-field-name').allTextContents()).toEqual(ssoQueryFields);
    await page.locator('.graphiql-doc-explorer-field-name', { hasText: /^personBySignIn$/ }).click();
    await page.locator('.graphiql-doc-explorer a', { hasText: /^Person$/ }).first().click();
    await expect.poll(() => page.locator('.graphiql-doc-explorer-field-name').allTextContents()).toEqual(ssoPerson);
    await page.context().close();
  });

  it('keeps the key in sessionStorage only: nothing in localStorage, and a reload keeps the chosen client', async () => {
    const { page } = await open();
    await pick(page, 'sso');
    await runQuery(page);
    const stored = await page.evaluate(() => ({ local: localStorage.length, session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)).join('\n') }));
    expect(stored.local).toBe(0);
    expect(stored.session).toContain(c.keyOf('sso'));
    await page.reload();
    await page.waitForSelector('.graphiql-container');
    expect(await page.locator('#rg-client option:checked').textContent()).toBe('sso-demo (sso)');
    expect(await page.locator('.graphiql-editor-tool .graphiql-editor').last().textContent()).toContain(c.keyOf('sso'));
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    // As after a demo restart: the stored tabs hold a key that no longer exists. They are dropped,
    // and the console starts afresh with today's key (GraphiQL stores its tabs half a second after a change).
    await page.waitForTimeout(1_000);
    const key = c.keyOf('sso');
    await page.evaluate((k) => {
      for (const name of Object.keys(sessionStorage)) sessionStorage.setItem(name, sessionStorage.getItem(name)!.split(k).join('rgk_from-an-earlier-run'));
    }, key);
    await page.reload();
    await page.waitForSelector('.graphiql-container');
    // One tab, so no tab bar (GraphiQL shows it from two); kept, the old tab would have been a second.
    expect(await page.locator('.graphiql-tab').count()).toBe(0);
    expect((await runQuery(page)).request().headers()['x-api-key']).toBe(key);
    await page.context().close();
  });

  it('every tab runs with the chosen client’s key, however the tabs were opened', async () => {
    const { page } = await open();
    await pick(page, 'sso');
    await pick(page, 'analytics');
    // The LMS example opened for analytics: a second tab, refused for what analytics may not see.
    await page.selectOption('#rg-example', { label: 'School roster — roster-sync' });
    await expect.poll(() => page.locator('.graphiql-tab').count()).toBe(2);
    expect((await runQuery(page)).status()).toBe(400);
    await page.locator('.graphiql-tab').first().click();
    const answer = await runQuery(page);
    expect(answer.request().headers()['x-api-key']).toBe(c.keyOf('analytics'));
    expect(answer.status()).toBe(200);
    // Back to sso: its own tabs, with its own key.
    await pick(page, 'sso');
    expect((await runQuery(page)).request().headers()['x-api-key']).toBe(c.keyOf('sso'));
    await page.context().close();
  });

  it('GraphiQL’s dialogs work under the CSP; the only thing refused is a scroll-bar style a dialog library injects', async () => {
    const { page, problems } = await open();
    await page.click('button[aria-label="Open settings dialog"]');
    await expect.poll(() => page.getByRole('dialog').textContent()).toMatch(/Persist headers/);
    await page.keyboard.press('Escape');
    await page.click('button[aria-label="Open short keys dialog"]');
    await expect.poll(() => page.getByRole('dialog').textContent()).toMatch(/Execute query/);
    await page.keyboard.press('Escape');
    // react-remove-scroll-bar adds a <style> to keep the page from shifting under a modal: refused, harmlessly.
    for (const p of problems) expect(p).toMatch(/^CSP: Applying inline style violates the following Content Security Policy directive 'style-src 'self''/);
    await page.context().close();
  });

  it('a gateway that stopped: the result pane and the status say it did not answer', async () => {
    const schema = makeExecutableSchema({ typeDefs: 'type Query { ok: String }', resolvers: { Query: { ok: () => 'ok' } } });
    const g = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), port: 0, log: createLogger({ level: 'silent' }) });
    const { page, problems } = await open(g.url);
    await expect.poll(() => status(page).textContent()).toMatch(/^200 /);
    await queryEditor(page, '{ ok }');
    await g.close();
    await page.click('.graphiql-execute-button');
    await expect.poll(() => result(page)).toMatch(/The gateway at http:\/\/127\.0\.0\.1:\d+ did not answer \(the connection failed\)\. Is it running\?/);
    expect(await status(page).textContent()).toBe('gateway unreachable');
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
