/** `npm run bench [name…]`: runs the benchmarks and prints their figures. */
import { benchPrivacy } from './privacy.ts';

const benches: Record<string, () => Promise<void>> = { privacy: benchPrivacy };
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(benches);
for (const name of chosen) {
  const b = benches[name];
  if (!b) {
    console.error(`unknown benchmark ${name} (have: ${Object.keys(benches).join(', ')})`);
    process.exit(2);
  }
  await b();
}
