/**
 * The host engine's BatchNormalization in training (src/engine/layers/
 * batch_normalization.ts), forward and backward, in WebAssembly SIMD: the
 * same float32 operations on the same float32 operands as the kind's JS
 * loops, and the same float64 sums in the same order, so every result is bit
 * for bit the JS loops' (tests/batch_norm_kernel_test.ts).
 *
 * How the JS maps here: a JS `fround(a ∘ b)` of float32 values `a`, `b` is
 * the float32 operation (for + − × ÷ the double rounding through float64 is
 * innocuous), so those run four channels at a time on f32x4; the JS's
 * float64 operations (the per-channel sums, `√(σ² + ε)`, the output's
 * formula, `1 / √·`) run on f64x2, two channels a vector, and a rounding to
 * float32 is a demote and a promote. Each block of four channels goes down
 * the rows (the row-major arrays read 32 bytes a row), its sums in registers:
 * each channel's sum adds its rows in the JS loop's order. Channels past the
 * last block of four take the same code one at a time (one lane loaded, the
 * other lanes' zeros computed and dropped).
 *
 * @module
 */
import { type Code, doWhile, F64, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";

/** The widest batch whose row count is a float32 (the kernels divide by it in float32). */
export const MAX_ROWS = 2 ** 24;

/** Loads and stores of a block of `width` channels (4, or 1 for the channels past the last four). */
class Lanes {
  constructor(readonly f: Func, readonly width: 4 | 1) {}
  /** float64 values at `addr`: channels 0–1 into `lo`, 2–3 into `hi` (one channel: `lo`'s first lane, `hi` zero). */
  loadF64(addr: Code, lo: Local, hi: Local): Code {
    const { set } = this.f;
    return this.width === 4
      ? [...addr, ...op.v128Load(), ...set(lo), ...addr, ...op.v128Load(16), ...set(hi)]
      : [...addr, ...op.load64Zero(), ...set(lo), ...op.v128Zero, ...set(hi)];
  }
  /** Stores the block's float64 values, `lo` and `hi` as {@link loadF64} reads them. */
  storeF64(addr: Code, lo: Code, hi: Code): Code {
    return this.width === 4
      ? [...addr, ...lo, ...op.v128Store(), ...addr, ...hi, ...op.v128Store(16)]
      : [...addr, ...lo, ...op.store64Lane(0)];
  }
  /** The block's float32 values at `addr`, on the stack. */
  loadF32(addr: Code): Code {
    return this.width === 4 ? [...addr, ...op.v128Load()] : [...addr, ...op.load32Zero()];
  }
  /** Stores the block's float32 `value`. */
  storeF32(addr: Code, value: Code): Code {
    return this.width === 4 ? [...addr, ...value, ...op.v128Store()] : [...addr, ...value, ...op.store32Lane(0)];
  }
}

/** Four float32 lanes from two float64x2 vectors (each value rounded: `fround`). */
const narrow = (f: Func, lo: Local, hi: Local): Code => [
  ...f.get(lo),
  ...op.demoteZero,
  ...f.get(hi),
  ...op.demoteZero,
  ...op.shuffle32([0, 1, 4, 5]),
];
/** Lanes 0–1 of a float32 vector as float64. */
const low = (f: Func, v: Local): Code => [...f.get(v), ...op.promoteLow];
/** Lanes 2–3 of a float32 vector as float64. */
const high = (f: Func, v: Local): Code => [...f.get(v), ...f.get(v), ...op.shuffle32([2, 3, 2, 3]), ...op.promoteLow];
/** Rounds the float64x2 on the stack to float32 values (kept as float64). */
const round: Code = [...op.demoteZero, ...op.promoteLow];
/** `acc += value` (float64x2). */
const addInto = (f: Func, acc: Local, value: Code): Code => [...f.get(acc), ...value, ...op.f64x2Add, ...f.set(acc)];
/** Both halves of the float32 vector `v` added into the float64 sums `lo` (channels 0–1) and `hi` (2–3). */
const addHalves = (f: Func, lo: Local, hi: Local, v: Local): Code => [
  ...addInto(f, lo, low(f, v)),
  ...addInto(f, hi, high(f, v)),
];

/**
 * The channel blocks: `block(lanes)` for each four channels, then for each
 * channel left, with `j4` and `j8` the block's first channel's byte offset
 * in float32 and float64 arrays (`c4`: the channels' bytes in float32).
 */
function eachBlock(f: Func, j4: Local, j8: Local, c4: Local, block: (lanes: Lanes) => Code): Code {
  const { get, increment } = f;
  const { i32, add } = op;
  const run = (width: 4 | 1): Code => [
    ...op.block,
    ...op.loop,
    ...get(j4),
    ...i32(width * 4),
    ...add,
    ...get(c4),
    ...op.gtU,
    ...op.brIf(1),
    ...block(new Lanes(f, width)),
    ...increment(j4, i32(width * 4)),
    ...increment(j8, i32(width * 8)),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
  return [...i32(0), ...f.set(j4), ...i32(0), ...f.set(j8), ...run(4), ...run(1)];
}

/**
 * `bnForward(x, out, dev, rsqrt, g, b, mm, mv, rows, c, divide, scale,
 * epsilon, eps32, decay)`: the kind's training forward pass over `rows` rows
 * of `c` channels (float64 `x`, `out`, `dev`; float64 `rsqrt` of `c`;
 * float32 γ `g`, β `b`, moving mean `mm` and variance `mv`). A value's share
 * of a mean is `fround(v) / scale` when `divide`, else `fround(v) · scale`
 * (`scale` = 1 / rows, a power of two); `eps32` and `decay` are float32
 * values, `epsilon` the JS number.
 */
export function batchNormForwardFunction(): FunctionDef {
  const f = new Func("bnForward");
  const [x, out, dev, rsqrt, g, b, mm, mv, rows, c, divide] = f.params(
    "x",
    "out",
    "dev",
    "rsqrt",
    "g",
    "b",
    "mm",
    "mv",
    "rows",
    "c",
    "divide",
  );
  const [scale, epsilon, eps32, decay] = ["scale", "epsilon", "eps32", "decay"].map((n) => f.param(n, F64));
  const [j4, j8, c4, rowBytes, span, p, q, end] = f.locals(I32, "j4", "j8", "c4", "rowBytes", "span", "p", "q", "end");
  const [SCALE, EPS, EPS32, DECAY, ONE] = f.locals(V128, "SCALE", "EPS", "EPS32", "DECAY", "ONE");
  const [lo, hi, s0, s1, t, mean, m0, m1, variance, r0, r1, g0, g1, b0, b1] = f.locals(
    V128,
    "lo",
    "hi",
    "s0",
    "s1",
    "t",
    "mean",
    "m0",
    "m1",
    "variance",
    "r0",
    "r1",
    "g0",
    "g1",
    "b0",
    "b1",
  );
  const { get, set, tee, increment } = f;
  const { i32, add, mul } = op;
  const f32Splat = (v: Local): Code => [...get(v), ...op.f32DemoteF64, ...op.f32x4Splat];
  const at = (base: Local, offset: Local): Code => [...get(base), ...get(offset), ...add];
  // p = base + j8 (and q = other + j8), end = p + span; then `body` for each row, p (and q) moving a row.
  const rowsOf = (base: Local, other: Local | undefined, body: Code): Code => [
    ...at(base, j8),
    ...tee(p),
    ...get(span),
    ...add,
    ...set(end),
    ...(other ? [...at(other, j8), ...set(q)] : []),
    ...doWhile([
      ...body,
      ...increment(p, get(rowBytes)),
      ...(other ? increment(q, get(rowBytes)) : []),
    ], [...get(p), ...get(end), ...op.ne]),
  ];
  // The share of a mean of the float32 vector on the stack, by multiplying or dividing as `divide` says.
  const shared = (lanes: (share: Code) => Code): Code => [
    ...get(divide),
    ...op.if,
    ...lanes([...get(SCALE), ...op.f32x4Div]),
    ...op.else,
    ...lanes([...get(SCALE), ...op.f32x4Mul]),
    ...op.end,
  ];
  const output = (v: Local, beta: Local, m: Local, gamma: Local, root: Local): Code => [
    ...get(beta),
    ...get(v),
    ...round,
    ...get(m),
    ...op.f64x2Sub,
    ...get(gamma),
    ...op.f64x2Mul,
    ...get(root),
    ...op.f64x2Div,
    ...op.f64x2Add,
    ...round,
  ];
  const zeroSums: Code = [...op.v128Zero, ...set(s0), ...op.v128Zero, ...set(s1)];
  const block = (lanes: Lanes): Code => [
    // mean = fround(Σ fround(fround(x) / N)), each channel's sum in float64.
    ...zeroSums,
    ...shared((share) =>
      rowsOf(x, undefined, [
        ...lanes.loadF64(get(p), lo, hi),
        ...narrow(f, lo, hi),
        ...share,
        ...set(t),
        ...addHalves(f, s0, s1, t),
      ])
    ),
    ...narrow(f, s0, s1),
    ...tee(mean),
    ...op.promoteLow,
    ...set(m0),
    ...high(f, mean),
    ...set(m1),
    // dev = fround(fround(x) − mean); variance = fround(Σ fround(fround(dev²) / N)).
    ...zeroSums,
    ...shared((share) =>
      rowsOf(x, dev, [
        ...lanes.loadF64(get(p), lo, hi),
        ...narrow(f, lo, hi),
        ...get(mean),
        ...op.f32x4Sub,
        ...set(t),
        ...lanes.storeF64(get(q), low(f, t), high(f, t)),
        ...get(t),
        ...get(t),
        ...op.f32x4Mul,
        ...share,
        ...set(t),
        ...addHalves(f, s0, s1, t),
      ])
    ),
    ...narrow(f, s0, s1),
    ...set(variance),
    // The moving averages: m − (m − v) · decay, in float32.
    ...[[mm, mean], [mv, variance]].flatMap(([moving, value]) => [
      ...lanes.loadF32(at(moving, j4)),
      ...set(t),
      ...lanes.storeF32(at(moving, j4), [
        ...get(t),
        ...get(t),
        ...get(value),
        ...op.f32x4Sub,
        ...get(DECAY),
        ...op.f32x4Mul,
        ...op.f32x4Sub,
      ]),
    ]),
    // root = √(variance + epsilon) in float64; rsqrt = fround(1 / √fround(variance + eps32)).
    ...low(f, variance),
    ...get(EPS),
    ...op.f64x2Add,
    ...op.f64x2Sqrt,
    ...set(r0),
    ...high(f, variance),
    ...get(EPS),
    ...op.f64x2Add,
    ...op.f64x2Sqrt,
    ...set(r1),
    ...get(variance),
    ...get(EPS32),
    ...op.f32x4Add,
    ...set(t),
    ...lanes.storeF64(
      at(rsqrt, j8),
      [...get(ONE), ...low(f, t), ...op.f64x2Sqrt, ...op.f64x2Div, ...round],
      [...get(ONE), ...high(f, t), ...op.f64x2Sqrt, ...op.f64x2Div, ...round],
    ),
    ...[[g, g0, g1], [b, b0, b1]].flatMap(([from, l, h]) => [
      ...lanes.loadF32(at(from, j4)),
      ...set(t),
      ...low(f, t),
      ...set(l),
      ...high(f, t),
      ...set(h),
    ]),
    // out = fround(β + (fround(x) − mean) · γ / root), in float64.
    ...rowsOf(x, out, [
      ...lanes.loadF64(get(p), lo, hi),
      ...lanes.storeF64(get(q), output(lo, b0, m0, g0, r0), output(hi, b1, m1, g1, r1)),
    ]),
  ];
  return f.build([
    ...get(c),
    ...i32(8),
    ...mul,
    ...set(rowBytes),
    ...get(c),
    ...i32(4),
    ...mul,
    ...set(c4),
    ...get(rows),
    ...get(rowBytes),
    ...mul,
    ...set(span),
    ...f32Splat(scale),
    ...set(SCALE),
    ...get(epsilon),
    ...op.f64x2Splat,
    ...set(EPS),
    ...f32Splat(eps32),
    ...set(EPS32),
    ...f32Splat(decay),
    ...set(DECAY),
    ...op.f64(1),
    ...op.f64x2Splat,
    ...set(ONE),
    ...eachBlock(f, j4, j8, c4, block),
  ]);
}

/**
 * `bnBackward(dy, dev, rsqrt, g, into, gammaGrad, betaGrad, rows, c,
 * count)`: the kind's backward pass over `rows` rows of `c` channels
 * (float64 `dy`, `dev` and the input gradient `into`, written; float64
 * `rsqrt` of `c` and γ's and β's gradients, added into; float32 γ `g`),
 * `count` being `rows` as a float64. Each channel's `−½ · rsqrt³` must be a
 * float32 value (see {@link cubesAreFloat32}): it is computed in float32.
 */
export function batchNormBackwardFunction(): FunctionDef {
  const f = new Func("bnBackward");
  const [dy, dev, rsqrt, g, into, gammaGrad, betaGrad, rows, c] = f.params(
    "dy",
    "dev",
    "rsqrt",
    "g",
    "into",
    "gammaGrad",
    "betaGrad",
    "rows",
    "c",
  );
  const count = f.param("count", F64);
  const [j4, j8, c4, rowBytes, span, p, q, r, end] = f.locals(
    I32,
    "j4",
    "j8",
    "c4",
    "rowBytes",
    "span",
    "p",
    "q",
    "r",
    "end",
  );
  const [ROWS, HALF, TWO] = f.locals(V128, "ROWS", "HALF", "TWO");
  const [k, cube, gv, d, e, t, lo, hi] = f.locals(V128, "k", "cube", "gv", "d", "e", "t", "lo", "hi");
  // The per-channel sums, channels 0–1 and 2–3 of the block.
  const [sumDy0, sumDy1, sumDyX0, sumDyX1, dMean0, dMean1, dVar0, dVar1] = f.locals(
    V128,
    "sumDy0",
    "sumDy1",
    "sumDyX0",
    "sumDyX1",
    "dMean0",
    "dMean1",
    "dVar0",
    "dVar1",
  );
  const { get, set, tee, increment } = f;
  const { i32, add, mul } = op;
  const at = (base: Local, offset: Local): Code => [...get(base), ...get(offset), ...add];
  const mul32 = (a: Code, b: Code): Code => [...a, ...b, ...op.f32x4Mul];
  const zero = (...locals: Local[]): Code => locals.flatMap((l) => [...op.v128Zero, ...set(l)]);
  // For each row, `body` with p, q and r at the block's values of `dy`, `dev` and `into` (those given).
  const rowsOf = (body: Code): Code => [
    ...at(dy, j8),
    ...set(p),
    ...at(dev, j8),
    ...tee(q),
    ...get(span),
    ...add,
    ...set(end),
    ...at(into, j8),
    ...set(r),
    ...doWhile([
      ...body,
      ...increment(p, get(rowBytes)),
      ...increment(q, get(rowBytes)),
      ...increment(r, get(rowBytes)),
    ], [...get(q), ...get(end), ...op.ne]),
  ];
  // grad[j] += fround(sum[j]), float64.
  const addRounded = (lanes: Lanes, grad: Local, s0: Local, s1: Local): Code => [
    ...lanes.loadF64(at(grad, j8), lo, hi),
    ...lanes.storeF64(
      at(grad, j8),
      [...get(lo), ...get(s0), ...round, ...op.f64x2Add],
      [...get(hi), ...get(s1), ...round, ...op.f64x2Add],
    ),
  ];
  const block = (lanes: Lanes): Code => [
    ...lanes.loadF64(at(rsqrt, j8), lo, hi),
    ...narrow(f, lo, hi),
    ...tee(k),
    ...get(k),
    ...op.f32x4Mul,
    ...get(k),
    ...op.f32x4Mul,
    ...get(HALF),
    ...op.f32x4Mul,
    ...set(cube),
    ...lanes.loadF32(at(g, j4)),
    ...set(gv),
    ...zero(sumDy0, sumDy1, sumDyX0, sumDyX1, dMean0, dMean1, dVar0, dVar1),
    // The batchNorm's gradients: Σ dy, Σ dy · fround(dev · k), Σ k · dy·γ, Σ (−½k³ · dev) · dy·γ; x's: dy · k · γ.
    ...rowsOf([
      ...lanes.loadF64(get(p), lo, hi),
      ...narrow(f, lo, hi),
      ...set(d),
      ...lanes.loadF64(get(q), lo, hi),
      ...narrow(f, lo, hi),
      ...set(e),
      ...addHalves(f, sumDy0, sumDy1, d),
      ...mul32(get(d), mul32(get(e), get(k))),
      ...set(t),
      ...addHalves(f, sumDyX0, sumDyX1, t),
      ...mul32(get(d), get(gv)),
      ...set(lo), // dy · γ (a float32 vector here)
      ...mul32(get(k), get(lo)),
      ...set(t),
      ...addHalves(f, dMean0, dMean1, t),
      ...mul32(mul32(get(cube), get(e)), get(lo)),
      ...set(t),
      ...addHalves(f, dVar0, dVar1, t),
      ...mul32(mul32(get(d), get(k)), get(gv)),
      ...set(t),
      ...lanes.storeF64(get(r), low(f, t), high(f, t)),
    ]),
    ...addRounded(lanes, gammaGrad, sumDyX0, sumDyX1),
    ...addRounded(lanes, betaGrad, sumDy0, sumDy1),
    // Through the variance: t = fround(fround(fround(Σ dVar) / N) · 2 · dev), added to x's; Σ t to the mean's.
    ...narrow(f, dVar0, dVar1),
    ...get(ROWS),
    ...op.f32x4Div,
    ...set(t),
    ...low(f, t),
    ...get(TWO),
    ...op.f64x2Mul,
    ...set(dVar0),
    ...high(f, t),
    ...get(TWO),
    ...op.f64x2Mul,
    ...set(dVar1),
    ...zero(sumDy0, sumDy1),
    ...rowsOf([
      ...lanes.loadF64(get(q), lo, hi),
      ...get(dVar0),
      ...get(lo),
      ...op.f64x2Mul,
      ...round,
      ...set(lo),
      ...get(dVar1),
      ...get(hi),
      ...op.f64x2Mul,
      ...round,
      ...set(hi),
      ...addInto(f, sumDy0, get(lo)),
      ...addInto(f, sumDy1, get(hi)),
      ...lanes.loadF64(get(r), d, e),
      ...lanes.storeF64(
        get(r),
        [...get(d), ...get(lo), ...op.f64x2Add, ...round],
        [...get(e), ...get(hi), ...op.f64x2Add, ...round],
      ),
    ]),
    // The mean's: fround(fround(−fround(Σ dMean) − fround(Σ t)) / N) for every row of x.
    ...narrow(f, dMean0, dMean1),
    ...op.f32x4Neg,
    ...narrow(f, sumDy0, sumDy1),
    ...op.f32x4Sub,
    ...get(ROWS),
    ...op.f32x4Div,
    ...set(t),
    ...low(f, t),
    ...set(dMean0),
    ...high(f, t),
    ...set(dMean1),
    ...rowsOf([
      ...lanes.loadF64(get(r), lo, hi),
      ...lanes.storeF64(
        get(r),
        [...get(lo), ...get(dMean0), ...op.f64x2Add, ...round],
        [...get(hi), ...get(dMean1), ...op.f64x2Add, ...round],
      ),
    ]),
  ];
  return f.build([
    ...get(c),
    ...i32(8),
    ...mul,
    ...set(rowBytes),
    ...get(c),
    ...i32(4),
    ...mul,
    ...set(c4),
    ...get(rows),
    ...get(rowBytes),
    ...mul,
    ...set(span),
    ...get(count),
    ...op.f32DemoteF64,
    ...op.f32x4Splat,
    ...set(ROWS),
    ...op.f32(-0.5),
    ...op.f32x4Splat,
    ...set(HALF),
    ...op.f64(2),
    ...op.f64x2Splat,
    ...set(TWO),
    ...eachBlock(f, j4, j8, c4, block),
  ]);
}

/**
 * Whether every channel's `−½ · fround(fround(k · k) · k)` (`k` = `rsqrt[j]`)
 * is a float32 value (or NaN), as {@link batchNormBackwardFunction} needs:
 * all but a cube below 2⁻¹²⁵ (a variance above ~10²⁵) are.
 */
export function cubesAreFloat32(rsqrt: Float64Array, c: number): boolean {
  const fround = Math.fround;
  for (let j = 0; j < c; j++) {
    const k = rsqrt[j], cube = -0.5 * fround(fround(k * k) * k);
    if (fround(cube) !== cube && cube === cube) return false;
  }
  return true;
}
