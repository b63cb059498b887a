/** `npm run bench [name…]`: runs the benchmarks and prints their figures. */
import { benchPrivacy } from './privacy.ts';
import { benchConsumers } from './consumers.ts';
import { benchSync } from './sync.ts';
import { benchStoreQueries } from './store-queries.ts';
import { benchExtract } from './extract.ts';
import { benchServing } from './serving.ts';
import { benchTenants } from './tenants.ts';
import { benchContention } from './contention.ts';

const benches: Record<string, () => Promise<void>> = {
  privacy: benchPrivacy,
  consumers: benchConsumers,
  sync: benchSync,
  'store-queries': benchStoreQueries,
  extract: benchExtract,
  serving: benchServing,
  tenants: () => benchTenants(),
  contention: benchContention,
};
const names = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const chosen = names.length ? names : Object.keys(benches);
for (const name of chosen) {
  const b = benches[name];
  if (!b) {
    console.error(`unknown benchmark ${name} (have: ${Object.keys(benches).join(', ')})`);
    process.exit(2);
  }
  await b();
}
