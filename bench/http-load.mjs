/**
 * The load generator of bench/serving.ts, run in a worker thread so that sending requests and
 * parsing answers does not share the event loop it measures. Plain JavaScript: a worker does not
 * inherit the tsx loader the benchmark runs under.
 *
 * Input (workerData): url, headers, body, clients (concurrent requests), seconds.
 * Posts { requests, failures, seconds } when done; a non-200 answer, an answer with errors or no
 * answer at all (a connection reset) counts as a failure (and its first body is posted as `sample`, for the benchmark to show).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';

const { url, headers, body, clients, seconds } = workerData;
const u = new URL(url);
const pool = new Pool(u.origin, { connections: clients, pipelining: 1 });
let requests = 0;
let failures = 0;
let sample;
const started = performance.now();
const until = started + seconds * 1000;

async function client() {
  while (performance.now() < until) {
    let r, text;
    try {
      r = await pool.request({ method: 'POST', path: u.pathname, headers: { 'content-type': 'application/json', ...headers }, body });
      text = await r.body.text();
    } catch (e) {
      // A connection the server reset or closed is a failed request, named, not a crash of the bench.
      failures++;
      sample ??= `no answer: ${e.code ?? e.name} ${e.message}`;
      continue;
    }
    if (r.statusCode !== 200 || text.includes('"errors"')) {
      failures++;
      sample ??= `${r.statusCode} ${text.slice(0, 300)}`;
    } else requests++;
  }
}

await Promise.all(Array.from({ length: clients }, client));
const elapsed = (performance.now() - started) / 1000;
await pool.close();
parentPort.postMessage({ requests, failures, seconds: elapsed, sample });
