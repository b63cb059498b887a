/** The two queries of rostergate issue 11 that stopped the gateway, as regression inputs. */

/** The issue's query: three aliases of four nested lists of 1000 (678 bytes; it ran the process out of memory). */
export const COSTLY = `{ ${['a', 'b', 'c'].map((a) => `${a}: schools(first: 1000) { edges { node { people(first: 1000) { edges { node { enrollments(first: 1000) { edges { node { class { enrollments(first: 1000) { edges { node { person { id } } } } } } } } } } } } } }`).join(' ')} }`;

/** The issue's fragment chain: each fragment spreads the next twice, 22 deep (2^22 paths). */
export function fragmentChain(n = 22): string {
  const defs = Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  return `query Q { ...F0 } ${defs.join(' ')} fragment F${n} on Query { schools(first: 1) { totalCount } }`;
}
