/**
 * Seeded randomness for shuffling: a small, fast 32-bit generator and a
 * Fisher–Yates permutation. Same seed, same sequence, on every runtime.
 *
 * @module
 */

/** A source of uniform floats in [0, 1). */
export type Random = () => number;

/** A seeded generator (mulberry32); without a seed, one drawn from `Math.random`. Internal. */
export function createRandom(seed?: number): Random {
  let state = (seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A random permutation of `0 … n-1`. Internal. */
export function permutation(n: number, random: Random): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
