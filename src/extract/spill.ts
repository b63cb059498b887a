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
 *
 * A parallel extract (./parallel.ts) spills on its threads instead: the extracting thread makes a
 * private folder (`SpillFolder`), each thread appends the pages of the ranges it checked to a file
 * of its own there (`SpillAppender`) and hands back where they lie (`SpillPart`), and in the writing
 * pass any thread reads a range back (`readPart`). The extracting thread removes the folder when the
 * extract ends, so a thread that stopped half way leaves nothing behind either.
 */
import { closeSync, createReadStream, openSync, readSync, writeSync } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Makes the private folder spill files live in (0700, under the system's temp folder). */
async function privateFolder(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'rostergate-extract-'));
}

export class Spill<T> {
  private constructor(
    private readonly dir: string,
    private readonly file: string,
    private handle: FileHandle | undefined,
  ) {}

  static async create<T>(): Promise<Spill<T>> {
    const dir = await privateFolder();
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
    if (!this.handle) throw new Error('spill: written after it was read');
    await this.handle.write(Spill.line(page));
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

/** The folder a parallel extract's threads spill into: made and removed by the extracting thread. */
export class SpillFolder {
  private constructor(readonly path: string) {}

  static async create(): Promise<SpillFolder> {
    return new SpillFolder(await privateFolder());
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

/** Where a range's pages lie in a thread's spill file: bytes [start, end), one JSON line per page. */
export interface SpillPart {
  file: string;
  start: number;
  end: number;
}

/**
 * A thread's spill file: each range's lines appended in one synchronous write (a worker thread may
 * block on its own disk write), so the parts of ranges checked concurrently never interleave.
 */
export class SpillAppender {
  private readonly fd: number;
  private size = 0;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'wx', 0o600);
  }

  /** Appends lines made with `Spill.line`; where they lie. */
  append(lines: string): SpillPart {
    const bytes = Buffer.from(lines, 'utf8');
    for (let done = 0; done < bytes.length;) done += writeSync(this.fd, bytes, done, bytes.length - done, this.size + done);
    const part = { file: this.file, start: this.size, end: this.size + bytes.length };
    this.size += bytes.length;
    return part;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The pages of a part, in the order they were appended. */
export function readPart<T>(part: SpillPart): T[] {
  const bytes = Buffer.allocUnsafe(part.end - part.start);
  const fd = openSync(part.file, 'r');
  try {
    for (let done = 0; done < bytes.length;) {
      const n = readSync(fd, bytes, done, bytes.length - done, part.start + done);
      if (n === 0) throw new Error(`spill: ${part.file} ends before byte ${part.end}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  const text = bytes.toString('utf8');
  const pages: T[] = [];
  // JSON.stringify escapes line breaks inside strings: every "\n" ends a page.
  for (let at = 0; at < text.length;) {
    const end = text.indexOf('\n', at);
    if (end < 0) throw new Error(`spill: ${part.file} has a page cut short before byte ${part.end}`);
    pages.push(JSON.parse(text.slice(at, end)) as T);
    at = end + 1;
  }
  return pages;
}
