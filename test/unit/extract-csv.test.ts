import { describe, expect, it } from 'vitest';
import { stringify } from 'csv-stringify/sync';
import { csvField, csvLines, type CsvCell } from '../../src/extract/csv.ts';

/** The library the writer replaces, with the options extracts used (booleans as true/false): the reference for every byte. */
const CSV_OPTIONS = { cast: { boolean: (v: boolean) => (v ? 'true' : 'false') } };
const reference = (rows: CsvCell[][]) => stringify(rows as unknown[][], CSV_OPTIONS);

describe('extract CSV writer', () => {
  it('writes what csv-stringify writes for awkward cells', () => {
    const awkward: CsvCell[] = [
      '', 'plain', 'a,b', 'say "hi"', '"', '""', 'line\nbreak', 'cr\rhere', 'crlf\r\n', ' lead and trail ', ';joined;list;', "'=1+1", '=1+1', '-3', '\t',
      'Zoë Ñandú 𝄞', ',', '\n', 0, -0, -3.5, 1e21, Number.NaN, 12345678901234567890n, true, false, null, undefined,
      { nested: 'x,"y"' }, ['a', 'b'], new Date(Date.UTC(2026, 11, 4)),
    ];
    expect(csvLines([awkward])).toBe(reference([awkward]));
    for (const v of awkward) expect(csvField(v)).toBe(reference([[v]]).slice(0, -1));
  });

  it('matches csv-stringify on random strings drawn from the characters that matter', () => {
    // A fixed generator (no Math.random): the same cases on every run.
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const alphabet = ['a', 'Z', '0', ',', '"', '\n', '\r', ' ', ';', "'", '=', 'é', '\t'];
    const rows = Array.from({ length: 300 }, () =>
      Array.from({ length: 1 + (next() % 5) }, () => Array.from({ length: next() % 7 }, () => alphabet[next() % alphabet.length]).join('')));
    expect(csvLines(rows)).toBe(reference(rows));
  });

  it('writes a header row and no rows as csv-stringify does', () => {
    expect(csvLines([['id', 'class.id', 'demographics.birthYear']])).toBe(reference([['id', 'class.id', 'demographics.birthYear']]));
    expect(csvLines([])).toBe('');
  });
});
