/**
 * Seeded randomness for shuffling: a small, fast 32-bit generator and a
 * Fisher–Yates permutation. Same seed, same sequence, on every runtime; the
 * generator's whole state is one integer, so checkpoints can save and restore it.
 *
 * @module
 */

/** A seeded generator (mulberry32) of uniform floats in [0, 1). Internal. */
export interface Random {
  /** The next float in [0, 1). */
  next(): number;
  /** The generator's state: restoring it replays the same sequence. */
  state: number;
}

/** A seeded generator; without a seed, one drawn from `Math.random`. Internal. */
export function createRandom(seed?: number): Random {
  return {
    state: (seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0,
    next() {
      this.state = (this.state + 0x6d2b79f5) >>> 0;
      let t = this.state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    },
  };
}

/** A random permutation of `0 … n-1`. Internal. */
export function permutation(n: number, random: Random): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
