/**
 * WAL checkpoints of a SQLite file store on a thread of their own.
 *
 * In WAL mode a commit appends the pages it changed to the -wal file. A checkpoint copies them back
 * into the database file and syncs it, so the WAL can start again from its beginning. SQLite's
 * default runs the checkpoint inside the COMMIT that takes the WAL past 1,000 pages, on the
 * committing connection, which here is the gateway's one thread. Measured at 20,000 students (direct
 * sync, SQLite): COMMIT took 7.0–7.7 s with those checkpoints and 2.7–3.0 s without, of about 35 s of
 * CPU. A busy gateway pays the same inside its audit group commits. SQLite lets an application
 * turn its automatic checkpoint down (wal_autocheckpoint) and run checkpoints itself
 * (wal_checkpoint), which is what this does, from another thread.
 *
 * How it works:
 * - After each commit the store calls `committed()`. That costs one message to the thread. A
 *   checkpoint still running absorbs the commits that arrive meanwhile, and the next starts when it
 *   ends.
 * - The thread runs `wal_checkpoint(PASSIVE)` on a connection of its own to the store's file.
 *   PASSIVE never waits for readers or writers: it copies what it can, and the rest waits for the
 *   next one. Connections on different threads are safe (better-sqlite3 builds SQLite for one
 *   connection per thread).
 * - The writer keeps an automatic checkpoint as a backstop, at `BACKSTOP_PAGES` (128 MiB of WAL;
 *   why so large is said there) instead of 1,000 pages, so the WAL cannot grow without end should
 *   the thread fall behind.
 *   Should the thread die, the writer goes back to SQLite's default. Durability never depends on
 *   the thread: a checkpoint only moves committed pages from one file to the other.
 *
 * One thread serves every file store of the process (a file per tenant), each through a connection
 * of its own there. It is started on the first commit, so a short command that writes nothing
 * (most of the CLI) never starts one; it is unref'd, so it never keeps a process alive; and it ends
 * when the last store stops.
 * Its code is plain JavaScript evaluated in the worker, not a module: it then runs the same from
 * the TypeScript sources and from the compiled image.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The writer's own automatic checkpoint, kept as a backstop (pages of 4 KiB: 128 MiB). Why so large:
 * while a sync writes group after group, the WAL cannot start again (it only does when a write
 * begins after a checkpoint has copied every frame, and the next group has always begun before
 * the thread is done), so it grows until the writer checkpoints. At 20,000 students, a backstop of
 * 10,000 pages left COMMIT at 5.3–6.5 s, 32,768 pages at 3.9 s; the WAL peaked at 176 MiB.
 */
export const BACKSTOP_PAGES = 32_768;
/** The WAL file is cut back to this size when it starts again (it keeps its largest size otherwise). */
export const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/** Checkpoints at most this often. */
export const MIN_INTERVAL_MS = 100;

/** What the last checkpoint reported: frames in the WAL and frames copied into the database. */
export interface CheckpointResult {
  walFrames: number;
  checkpointedFrames: number;
}

export interface CheckpointStats {
  /** Checkpoints run on the thread. */
  runs: number;
  last: CheckpointResult | undefined;
  /** The last failure, if any (after one that is not for good, the next commit tries again; the writer's backstop holds meanwhile). */
  error: string | undefined;
}

/**
 * The thread's code: one connection per store file, opened on its first checkpoint and closed when
 * the store closes. Messages are handled one at a time, so the stores of a process take turns.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const dbs = new Map();
parentPort.on('message', ({ op, id, path }) => {
  if (op === 'close') {
    dbs.get(id)?.close();
    dbs.delete(id);
    return;
  }
  let db = dbs.get(id);
  if (!db) {
    try {
      db = new Database(path, { fileMustExist: true });
      db.pragma('busy_timeout = 0');
      dbs.set(id, db);
    } catch (e) {
      parentPort.postMessage({ id, error: String((e && e.message) || e), fatal: true });
      return;
    }
  }
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    parentPort.postMessage({ id, walFrames: r.log, checkpointedFrames: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
});
`;

const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');

type Reply = { id: number } & (CheckpointResult | { error: string; fatal?: boolean });

/**
 * The process's one checkpoint thread, shared by its file stores: a deployment on SQLite keeps a
 * file per tenant (src/tenants/catalog-tenants.ts), and a thread each would cost hundreds of
 * threads' memory. Started with the first store that commits; ended when the last one stops.
 */
const shared = {
  worker: undefined as Worker | undefined,
  /** By store, not by file: a process may open one file twice (each has its connection there). */
  users: new Map<number, BackgroundCheckpointer>(),
  nextId: 1,

  post(user: BackgroundCheckpointer, op: 'checkpoint' | 'close'): void {
    if (op === 'checkpoint') this.users.set(user.id, user);
    if (!this.worker) {
      if (op === 'close') return;
      this.worker = this.start();
    }
    this.worker.postMessage({ op, id: user.id, path: user.path });
  },

  async leave(user: BackgroundCheckpointer): Promise<void> {
    if (this.users.get(user.id) !== user) return;
    this.post(user, 'close');
    this.users.delete(user.id);
    if (this.users.size === 0 && this.worker) {
      const w = this.worker;
      this.worker = undefined;
      await w.terminate();
    }
  },

  start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: betterSqlite } });
    w.unref();
    w.on('message', (m: Reply) => this.users.get(m.id)?.reply(m));
    // A thread that cannot start or dies is not started again on every commit: every store's
    // writer takes its checkpoints back, as SQLite does by default.
    w.on('error', (e) => {
      if (this.worker === w) this.worker = undefined;
      for (const user of this.users.values()) user.reply({ id: user.id, error: e.message, fatal: true });
      this.users.clear();
    });
    return w;
  },
};

/** How many stores the process's checkpoint thread serves now, and whether it runs (tests, diagnostics). */
export function checkpointThread(): { running: boolean; stores: number } {
  return { running: shared.worker !== undefined, stores: shared.users.size };
}

/** One store's side: when to ask the shared thread for a checkpoint, and what came of it. */
export class BackgroundCheckpointer {
  readonly id = shared.nextId++;
  private running = false;
  /** A commit came after the running checkpoint began (or while one waits for its turn). */
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private lastEnd = 0;
  private failed = false;
  private waiters: (() => void)[] = [];
  private readonly stats: CheckpointStats = { runs: 0, last: undefined, error: undefined };

  /** `onFailure`: checkpoints on the thread are over for this store (the file cannot be opened there, or the thread died); the writer checkpoints again. */
  constructor(
    readonly path: string,
    private readonly onFailure: (message: string) => void,
  ) {}

  /**
   * A commit happened: checkpoint now, or after the one running. At most one checkpoint per
   * `MIN_INTERVAL_MS`: each syncs two files, and a busy gateway commits audit batches many times a
   * second; a sync's groups take seconds, so it never waits.
   */
  committed(): void {
    if (this.failed) return;
    if (this.running || this.timer) {
      this.again = true;
      return;
    }
    const wait = this.lastEnd + MIN_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => this.run(), wait);
      this.timer.unref();
    } else this.run();
  }

  /** Resolves once no checkpoint is running or waiting (tests, and `stop`). */
  idle(): Promise<void> {
    if (!this.running && !this.timer) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  snapshot(): CheckpointStats {
    return { ...this.stats };
  }

  /** Lets a running checkpoint finish (one waiting for its turn runs now), then leaves the thread. */
  async stop(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.run();
    }
    this.again = false;
    await this.idle();
    this.failed = true;
    await shared.leave(this);
  }

  /** The thread's answer to this store's checkpoint (or news that it is gone). */
  reply(m: Reply): void {
    if ('error' in m) {
      this.stats.error = m.error;
      if (m.fatal && !this.failed) {
        this.failed = true;
        this.again = false;
        this.onFailure(m.error);
      }
    } else {
      this.stats.runs++;
      this.stats.last = { walFrames: m.walFrames, checkpointedFrames: m.checkpointedFrames };
      this.stats.error = undefined;
    }
    this.finished();
  }

  private run(): void {
    this.timer = undefined;
    this.again = false;
    this.running = true;
    shared.post(this, 'checkpoint');
  }

  private finished(): void {
    this.running = false;
    this.lastEnd = performance.now();
    if (this.again && !this.failed) {
      this.committed();
      return;
    }
    this.again = false;
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
