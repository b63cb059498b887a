import Database from 'better-sqlite3';
import { CachedStatements } from '../src/store/sqlite-statements.ts';
const times = new Map<string, { n: number; ms: number }>();
const orig = CachedStatements.prototype.prepare;
CachedStatements.prototype.prepare = function (sql: string) {
  const st = orig.call(this, sql) as any;
  if (st.__wrapped) return st;
  for (const m of ['run', 'all', 'get']) {
    const f = st[m].bind(st);
    st[m] = (...a: unknown[]) => {
      const t = performance.now();
      try { return f(...a); } finally {
        const k = sql.replace(/\s+/g, ' ').slice(0, 110);
        const e = times.get(k) ?? { n: 0, ms: 0 }; e.n++; e.ms += performance.now() - t; times.set(k, e);
      }
    };
  }
  st.__wrapped = true;
  return st;
};
const execOrig = Database.prototype.exec;
Database.prototype.exec = function (s: string) {
  const t = performance.now();
  try { return execOrig.call(this, s); } finally { const e = times.get('EXEC ' + s) ?? { n: 0, ms: 0 }; e.n++; e.ms += performance.now() - t; times.set('EXEC ' + s, e); }
};
process.on('exit', () => { for (const [k, v] of [...times].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) console.log(v.ms.toFixed(0).padStart(6), String(v.n).padStart(6), k.replace(/\s+/g, ' ').slice(0, 120)); });
await import('./prof.ts');
