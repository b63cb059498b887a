/*
 * The rostergate console: mounts GraphiQL (the globals React, ReactDOM and GraphiQL come from the UMD
 * builds the gateway serves, see assets.ts) under a bar with the demo client and example pickers,
 * configured by the page's #rg-config data block. Plain browser JavaScript: nothing to build.
 *
 * - Introspection carries the headers editor's x-api-key, so autocomplete and the docs show that
 *   key's purpose schema; picking another client remounts GraphiQL, which introspects again.
 * - GraphiQL keeps tabs, headers and history in sessionStorage, never localStorage: a key typed in
 *   is gone when the browser tab closes.
 * - A gateway that does not answer (stopped, unreachable, or silent for 30 s) gives an error in
 *   the result pane and the status, never a request left waiting.
 */
(() => {
  'use strict';
  const config = JSON.parse(document.getElementById('rg-config').textContent);
  const clientPicker = document.getElementById('rg-client');
  const examplePicker = document.getElementById('rg-example');
  const status = document.getElementById('rg-status');
  const mountPoint = document.getElementById('rg-console');
  const TIMEOUT_MS = 30_000;
  const CLIENT_KEY = 'rostergate:client';  // the demo client picked last, by name

  if (typeof GraphiQL === 'undefined' || typeof ReactDOM === 'undefined') {
    mountPoint.textContent = 'The console’s scripts did not load: reload the page.';
    return;
  }

  /**
   * GraphiQL's storage: sessionStorage (its default would be localStorage), in a namespace per demo
   * client. GraphiQL keeps headers per tab, so one shared set of tabs would hold tabs still carrying
   * another client's key, run as that client's purpose against this one's schema; per client, every
   * tab carries that client's key.
   */
  function storageFor(client) {
    const prefix = client === undefined ? 'rostergate:console:' : `rostergate:as:${client}:`;
    const ours = () => Object.keys(sessionStorage).filter((k) => k.startsWith(prefix));
    return {
      getItem: (k) => sessionStorage.getItem(prefix + k),
      setItem: (k, v) => sessionStorage.setItem(prefix + k, v),
      removeItem: (k) => sessionStorage.removeItem(prefix + k),
      get length() { return ours().length; },
      clear: () => ours().forEach((k) => sessionStorage.removeItem(k)),
    };
  }

  function setStatus(text, bad) {
    status.textContent = text;
    status.classList.toggle('rg-bad', Boolean(bad));
  }

  const failure = (code, message) => ({ errors: [{ message, extensions: { code } }] });

  /** Posts to the gateway; every failure becomes a GraphQL-shaped error GraphiQL shows as the result. */
  /**
   * GraphiQL can send the operation name of the tab it just left with the query of the tab it
   * switched to (it re-reads the name a moment later); the gateway would refuse the mismatch. A name
   * the query does not define is dropped, so a document of one operation runs as written.
   */
  function withOwnOperationName(params) {
    const name = params && params.operationName;
    if (!name || typeof params.query !== 'string') return params;
    const defined = new RegExp('\\b(query|mutation|subscription)\\s+' + name + '\\b').test(params.query);
    if (defined) return params;
    const rest = Object.assign({}, params);
    delete rest.operationName;
    return rest;
  }

  async function fetcher(params, opts) {
    params = withOwnOperationName(params);
    let headers;
    try {
      headers = new Headers({ 'content-type': 'application/json', accept: 'application/json', ...(opts && opts.headers) });
    } catch (e) {
      setStatus('invalid headers', true);
      return failure('INVALID_HEADERS', `The headers cannot be sent: ${e.message}`);
    }
    const started = performance.now();
    let res;
    let text;
    try {
      res = await fetch(config.endpoint, { method: 'POST', headers, body: JSON.stringify(params), signal: AbortSignal.timeout(TIMEOUT_MS) });
      text = await res.text();
    } catch (e) {
      const why = e && e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : 'the connection failed';
      setStatus('gateway unreachable', true);
      return failure('GATEWAY_UNREACHABLE', `The gateway at ${location.origin} did not answer (${why}). Is it running? Run the query again when it is.`);
    }
    setStatus(`${res.status} · ${Math.round(performance.now() - started)} ms`, !res.ok);
    try {
      return JSON.parse(text);
    } catch {
      return failure('NOT_JSON', `The gateway answered ${res.status} with something other than JSON.`);
    }
  }

  const demoKeys = config.demoKeys;
  const examples = config.examples;
  const keyHeaders = (key) => JSON.stringify({ 'x-api-key': key }, null, 2);

  for (const [i, d] of demoKeys.entries()) clientPicker.add(new Option(`${d.client} (${d.purpose})`, String(i)));
  for (const [i, ex] of examples.entries()) examplePicker.add(new Option(ex.purpose ? `${ex.title} — ${ex.purpose}` : ex.title, String(i)));

  /** The example written for a purpose (or the first one). */
  const exampleFor = (purpose) => Math.max(0, examples.findIndex((ex) => ex.purpose === purpose));

  let mounts = 0;
  const root = ReactDOM.createRoot(mountPoint);
  /**
   * Mounts GraphiQL afresh (so it introspects with the headers given) on the storage of `client` (an
   * index into demoKeys, or -1 without demo keys). With an example, that example's tab is opened
   * (found among the stored tabs or added); without one, the stored tabs are as they were.
   */
  function mount(client, example) {
    const d = demoKeys[client];
    const ex = example === undefined ? undefined : examples[example];
    root.render(React.createElement(GraphiQL, {
      key: ++mounts,
      fetcher,
      storage: storageFor(d && d.client),
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: 'headers',
      defaultHeaders: keyHeaders(''),
      defaultQuery: examples[0] ? examples[0].query : undefined,
      headers: d ? keyHeaders(d.key) : undefined,
      query: ex && ex.query,
      variables: ex && JSON.stringify(ex.variables ?? {}, null, 2),
    }));
  }

  /** Whether stored tabs carry a key other than `key`: the demo makes new keys on every start. */
  function staleTabs(stored, key) {
    try {
      const state = JSON.parse(stored.getItem('graphiql:tabState') ?? '{"tabs":[]}');
      return state.tabs.some((t) => {
        const sent = t.headers ? JSON.parse(t.headers)['x-api-key'] : undefined;
        return Boolean(sent) && sent !== key;
      });
    } catch {
      return true;
    }
  }

  /** Opens `client`: its purpose's example on a first visit, else its tabs as left. */
  function open(client, example) {
    const d = demoKeys[client];
    const stored = storageFor(d && d.client);
    // Tabs from an earlier run of the demo would send a key that no longer exists: start afresh.
    if (d && staleTabs(stored, d.key)) stored.clear();
    const firstVisit = stored.getItem('graphiql:tabState') === null;
    const chosen = example ?? (d ? exampleFor(d.purpose) : 0);
    examplePicker.value = String(chosen);
    mount(client, example !== undefined || firstVisit ? chosen : undefined);
  }

  // The demo makes new keys on every start: the client remembered from an earlier page load is
  // looked up by name, and gets today's key.
  const remembered = demoKeys.findIndex((d) => d.client === sessionStorage.getItem(CLIENT_KEY));
  const selected = () => (clientPicker ? Number(clientPicker.value) : -1);
  if (clientPicker) clientPicker.value = String(Math.max(0, remembered));
  open(selected());

  if (clientPicker) {
    clientPicker.addEventListener('change', () => {
      sessionStorage.setItem(CLIENT_KEY, demoKeys[selected()].client);
      open(selected(), exampleFor(demoKeys[selected()].purpose));
    });
  }
  examplePicker.addEventListener('change', () => open(selected(), Number(examplePicker.value)));
})();
