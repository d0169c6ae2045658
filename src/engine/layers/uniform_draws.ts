/**
 * The numbers `tf.randomUniform(shape, 0, 1, "float32", seed)` draws in
 * tfjs 4.22, computed without a tensor: tfjs seeds seedrandom 3's Alea
 * generator (Baagøe's algorithm: a Mash hash of the seed's text sets three
 * fractions and a carry, then each number is a multiply-with-carry step) with
 * `String(seed)`, or with `String(Math.random())` when the seed is absent
 * (one draw of `Math.random` a call), and stores each number in a
 * Float32Array. The dropout kind needs 65,536 of them a layer a step in the
 * dropout MLP of bench/tfjs_models.ts: through `tf.randomUniform` they cost
 * ~2.0 ms a call on Deno and Bun alike (~30 ns a number: a property read and
 * write per state word, a closure call and a tensor), ~190 ms of a 480 ms
 * epoch; this loop keeps the state in locals.
 *
 * @module
 */

/** 2^-32. */
const UNIT = 2.3283064365386963e-10;

/** Baagøe's Mash: a running hash whose each call folds `text` into the state and returns a fraction in [0, 1). */
function mash(): (text: string) => number {
  let n = 0xefc8249d;
  return (text) => {
    for (let i = 0; i < text.length; i++) {
      n += text.charCodeAt(i);
      let h = 0.02519603282416938 * n;
      n = h >>> 0;
      h = (h - n) * n;
      n = h >>> 0;
      n += (h - n) * 0x100000000;
    }
    return (n >>> 0) * UNIT;
  };
}

/**
 * Alea's starting state for `seed` as tfjs seeds it (drawing `Math.random()`
 * once when `seed` is undefined): `[s0, s1, s2, carry]`. Internal.
 */
export function aleaState(seed: number | string | undefined): [number, number, number, number] {
  const key = String(seed ?? Math.random());
  const hash = mash();
  const blank = [hash(" "), hash(" "), hash(" ")];
  const [s0, s1, s2] = blank.map((s) => {
    const v = s - hash(key);
    return v < 0 ? v + 1 : v;
  });
  return [s0, s1, s2, 1];
}

/**
 * Writes into `out[0..count)` the numbers `tf.randomUniform([count], 0, 1,
 * "float32", seed)` would hold (drawing `Math.random()` once when `seed` is
 * undefined, as tfjs does). Internal.
 */
export function drawUniform(out: Float32Array, count: number, seed: number | string | undefined): void {
  let [s0, s1, s2, carry] = aleaState(seed);
  // Alea's step is t = 2091639·s0 + carry·2^-32, carry ← ⌊t⌋, s ← t − ⌊t⌋. Every value here is a multiple of 2^-32
  // below 2^21, so each operation is exact; the step is split so that the long part (the product's whole and
  // fraction) does not wait for the carry, and the carry only adds to a fraction and maybe overflows it: the same
  // numbers, 7.8 → 2.9 ns a draw on Bun and 7.8 → 5.5 on Deno (65,536 draws a call, 400 calls).
  for (let i = 0; i < count; i++) {
    const x = 2091639 * s0, whole = Math.floor(x);
    let fraction = x - whole + carry * UNIT, next = whole;
    if (fraction >= 1) {
      fraction -= 1;
      next += 1;
    }
    carry = next;
    s0 = s1;
    s1 = s2;
    s2 = fraction;
    out[i] = fraction; // min + range · s2 with min 0 and range 1: s2 itself
  }
}
