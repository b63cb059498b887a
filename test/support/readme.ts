/** The README's example (query, answers, refusal), read from README.md so tests keep it true. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ReadmeExample {
  /** The nested query, as the LMS asks it. */
  query: string;
  /** Its answer, as printed. */
  answer: any;
  /** The query the analytics client asks (from the class side), and one enrollment node of its answer. */
  analyticsQuery: string;
  analyticsNode: any;
  /** The query for an email and the analytics client's refusal. */
  refusedQuery: string;
  refusal: any;
}

export function readmeExample(): ReadmeExample {
  const text = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
  const section = text.slice(text.indexOf('## Example'), text.indexOf('\n## ', text.indexOf('## Example') + 1));
  const [query, analyticsQuery] = [...section.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const json = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!));
  const refusedQuery = /an email, `([^`]*)`/.exec(section)![1]!;
  if (json.length !== 3 || !query || !analyticsQuery) throw new Error(`README example: expected 2 queries and 3 JSON answers, found ${json.length} answers`);
  return { query, answer: json[0], analyticsQuery, analyticsNode: json[1], refusedQuery, refusal: json[2] };
}

/** The shape of a JSON value: keys and value kinds, with arrays reduced to their first element's shape. */
export function shapeOf(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shapeOf(v[0])] : [];
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shapeOf(x)]));
  return typeof v;
}
