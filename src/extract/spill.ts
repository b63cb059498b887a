/**
 * A private scratch file for an extract's projected pages while they wait to be written. An
 * extract under k-anonymity has to count every row's quasi-identifiers before it writes the first
 * row; reading the store a second time for the writing (as extracts did) cost as much as the
 * projection itself. Instead the one pass over the store writes its projected cells here, and the
 * writing pass reads them back: the live heap stays flat (a page at a time), and what is written
 * is exactly what was counted, whatever a sync does meanwhile.
 *
 * What lands on disk is the purpose view the client is about to receive (pseudonyms, generalised
 * values), one JSON line per page, before the k-anonymity generalisation — never gateway ids (the
 * caller keeps those in memory). The file lives in a folder of its own under the system's temp
 * folder, created 0700 by mkdtemp, the file 0600, and is removed when the extract ends, completed
 * or not. Hand-written: a few lines over node:fs and readline; no library adds anything here.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export class Spill<T> {
  private constructor(
    private readonly dir: string,
    private readonly file: string,
    private handle: FileHandle | undefined,
  ) {}

  static async create<T>(): Promise<Spill<T>> {
    const dir = await mkdtemp(join(tmpdir(), 'rostergate-extract-'));
    const file = join(dir, 'pages.ndjson');
    try {
      return new Spill<T>(dir, file, await open(file, 'wx', 0o600));
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** A page as the file holds it: one JSON line (strings, finite numbers, booleans and null come back as they went). */
  static line(page: unknown): string {
    return JSON.stringify(page) + '\n';
  }

  /** Appends one page. */
  async write(page: T): Promise<void> {
    await this.writeLines(Spill.line(page));
  }

  /** Appends pages already made lines (`line`: a parallel extract's thread makes them, ./parallel.ts). */
  async writeLines(lines: string): Promise<void> {
    if (!this.handle) throw new Error('spill: written after it was read');
    if (lines) await this.handle.write(lines);
  }

  /** The pages in the order written; the file takes no more writes. */
  async *pages(): AsyncGenerator<T> {
    await this.handle?.close();
    this.handle = undefined;
    // JSON.stringify escapes \r and \n inside strings, so every line break ends a page.
    const input = createReadStream(this.file);
    const lines = createInterface({ input, crlfDelay: Infinity });
    try {
      for await (const line of lines) yield JSON.parse(line) as T;
    } finally {
      lines.close();
      input.destroy();
    }
  }

  async remove(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    await rm(this.dir, { recursive: true, force: true });
  }
}
