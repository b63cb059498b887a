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
  const CLIENT_KEY = 'rostergate:client';
  const NAMESPACE = 'graphiql:';

  if (typeof GraphiQL === 'undefined' || typeof ReactDOM === 'undefined') {
    mountPoint.textContent = 'The console’s scripts did not load: reload the page.';
    return;
  }

  /** GraphiQL's storage, on sessionStorage (its default would be localStorage). */
  const ours = () => Object.keys(sessionStorage).filter((k) => k.startsWith(NAMESPACE));
  const storage = {
    getItem: (k) => sessionStorage.getItem(k),
    setItem: (k, v) => sessionStorage.setItem(k, v),
    removeItem: (k) => sessionStorage.removeItem(k),
    get length() { return ours().length; },
    clear: () => ours().forEach((k) => sessionStorage.removeItem(k)),
  };

  function setStatus(text, bad) {
    status.textContent = text;
    status.classList.toggle('rg-bad', Boolean(bad));
  }

  const failure = (code, message) => ({ errors: [{ message, extensions: { code } }] });

  /** Posts to the gateway; every failure becomes a GraphQL-shaped error GraphiQL shows as the result. */
  async function fetcher(params, opts) {
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
  /** Mounts GraphiQL afresh (so it introspects with the headers given); undefined props keep what storage has. */
  function mount({ headers, example }) {
    const ex = example === undefined ? undefined : examples[example];
    root.render(React.createElement(GraphiQL, {
      key: ++mounts,
      fetcher,
      storage,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: 'headers',
      defaultHeaders: keyHeaders(''),
      defaultQuery: examples[0] ? examples[0].query : undefined,
      headers,
      query: ex && ex.query,
      variables: ex && JSON.stringify(ex.variables ?? {}, null, 2),
    }));
  }

  // The demo makes new keys on every start: a client remembered from an earlier run is looked up
  // by name, so its key is today's.
  const remembered = demoKeys.findIndex((d) => d.client === sessionStorage.getItem(CLIENT_KEY));
  const client = demoKeys.length ? Math.max(0, remembered) : -1;
  if (client >= 0) clientPicker.value = String(client);
  // A reload keeps the query being edited; a first visit starts with the example for the client's purpose.
  const firstVisit = storage.getItem(`${NAMESPACE}query`) === null;
  const start = client >= 0 ? exampleFor(demoKeys[client].purpose) : 0;
  examplePicker.value = String(start);
  mount({ headers: client >= 0 ? keyHeaders(demoKeys[client].key) : undefined, example: firstVisit && examples.length ? start : undefined });

  if (clientPicker) {
    clientPicker.addEventListener('change', () => {
      const d = demoKeys[Number(clientPicker.value)];
      sessionStorage.setItem(CLIENT_KEY, d.client);
      examplePicker.value = String(exampleFor(d.purpose));
      mount({ headers: keyHeaders(d.key), example: exampleFor(d.purpose) });
    });
  }
  examplePicker.addEventListener('change', () => {
    const d = demoKeys[Number(clientPicker ? clientPicker.value : -1)];
    mount({ headers: d ? keyHeaders(d.key) : undefined, example: Number(examplePicker.value) });
  });
})();
