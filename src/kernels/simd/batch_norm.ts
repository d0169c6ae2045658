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
 * float32 is a demote and a promote. Each pass walks the rows in order, four
 * channels at a time, each channel's float64 sum in a per-channel array of
 * the work memory: each sum adds its rows in the JS loop's order. Channels
 * past the last four take the same code one at a time (one lane loaded, the
 * other lanes' zeros computed and dropped). Two things stay outside: the
 * inference pass (the layer engine only trains), and a backward pass where
 * some channel's `−½ · rsqrt³` is not a float32 value (it is one for any
 * variance under ~10²⁵; the kernel multiplies it in float32).
 *
 * Measured on 128 rows × 256 channels (the benchmark MLP's), against the JS
 * loops on the same arrays, alternating in one process: forward 121 → 47 µs,
 * backward 173 → 61 µs on Deno (110 → 41, 139 → 55 on Bun). The mean's,
 * the variance's and the backward pass's first sums take two rows at a time,
 * adding both into each sum before storing it (the rows' order kept):
 * against one row at a time, the forward
 * pass ran 2–18% faster and the backward 2–19% (six runs, Deno and Bun; the
 * old and new kernels alternating on one memory). A first version went down
 * the rows one block of four channels at a time, its sums in registers: it
 * ran no faster than the JS loops (forward 128 µs, backward 195) — likely as
 * the 2 KiB between rows put a column's rows in the same few cache sets (not
 * measured further).
 *
 * @module
 */
import { type Code, doWhile, F64, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";

/** The widest batch whose row count is a float32 (the kernels divide by it in float32). */
export const MAX_ROWS = 2 ** 24;

/** Per-channel arrays a kernel keeps in its work memory (each `c` float64s, or float32s in as many bytes). */
export const WORK_SLOTS = 8;

/**
 * Loads and stores of a block of `width` channels (4, or 1 for the channels
 * past the last four: one lane loaded, the others zeros computed and dropped).
 */
class Lanes {
  constructor(readonly f: Func, readonly width: 4 | 1) {}
  /** float64 values at `addr`: channels 0–1 (`half` 0) or 2–3 (`half` 1). */
  f64(addr: Code, half: 0 | 1): Code {
    if (this.width === 4) return [...addr, ...op.v128Load(16 * half)];
    return half === 0 ? [...addr, ...op.load64Zero()] : op.v128Zero;
  }
  /** Stores the block's float64 values: `lo` channels 0–1, `hi` 2–3. */
  storeF64(addr: Code, lo: Code, hi: Code): Code {
    return this.width === 4
      ? [...addr, ...lo, ...op.v128Store(), ...addr, ...hi, ...op.v128Store(16)]
      : [...addr, ...lo, ...op.store64Lane(0)];
  }
  /** `addr[j] += value[j]` for float64 values (`lo`, `hi` as {@link storeF64}). */
  addF64(addr: Code, lo: Code, hi: Code): Code {
    return this.storeF64(addr, [...this.f64(addr, 0), ...lo, ...op.f64x2Add], [
      ...this.f64(addr, 1),
      ...hi,
      ...op.f64x2Add,
    ]);
  }
  /** The block's float64 values at `addr` as four float32 lanes (each rounded: `fround`). */
  narrow(addr: Code): Code {
    return [
      ...this.f64(addr, 0),
      ...op.demoteZero,
      ...this.f64(addr, 1),
      ...op.demoteZero,
      ...op.shuffle32([0, 1, 4, 5]),
    ];
  }
  /** The block's float32 values at `addr`. */
  f32(addr: Code): Code {
    return this.width === 4 ? [...addr, ...op.v128Load()] : [...addr, ...op.load32Zero()];
  }
  /** Stores the block's float32 `value`. */
  storeF32(addr: Code, value: Code): Code {
    return this.width === 4 ? [...addr, ...value, ...op.v128Store()] : [...addr, ...value, ...op.store32Lane(0)];
  }
}

/** Lanes 0–1 of a float32 vector as float64. */
const low = (f: Func, v: Local): Code => [...f.get(v), ...op.promoteLow];
/** Lanes 2–3 of a float32 vector as float64. */
const high = (f: Func, v: Local): Code => [...f.get(v), ...f.get(v), ...op.shuffle32([2, 3, 2, 3]), ...op.promoteLow];
/** Rounds the float64x2 on the stack to float32 values (kept as float64). */
const round: Code = [...op.demoteZero, ...op.promoteLow];

/**
 * The loops and addresses both kernels use, over `rows` rows of `c`
 * channels with {@link WORK_SLOTS} per-channel arrays from `work` (the
 * function's parameters); its `setup` code goes first.
 */
class Walk {
  readonly j4: Local;
  readonly j8: Local;
  readonly o: Local;
  readonly c4: Local;
  readonly c8: Local;
  readonly rowAt: Local;
  readonly span: Local;
  readonly slots: Local[];
  readonly o1: Local;
  readonly pairSpan: Local;
  /** Computes `c4`, `c8`, `span` (the batch's bytes), `pairSpan` (its whole pairs of rows') and the slots. */
  readonly setup: Code;
  constructor(readonly f: Func, rows: Local, c: Local, work: Local) {
    [this.j4, this.j8, this.o, this.c4, this.c8, this.rowAt, this.span] = f.locals(
      I32,
      "j4",
      "j8",
      "o",
      "c4",
      "c8",
      "rowAt",
      "span",
    );
    this.slots = f.locals(I32, ...Array.from({ length: WORK_SLOTS }, (_, i) => `slot${i}`));
    [this.o1, this.pairSpan] = f.locals(I32, "o1", "pairSpan");
    const { get, set } = f;
    const { i32, mul, add } = op;
    this.setup = [
      ...get(c),
      ...i32(4),
      ...mul,
      ...set(this.c4),
      ...get(c),
      ...i32(8),
      ...mul,
      ...set(this.c8),
      ...get(rows),
      ...get(this.c8),
      ...mul,
      ...set(this.span),
      ...get(rows),
      ...i32(-2),
      ...op.and,
      ...get(this.c8),
      ...mul,
      ...set(this.pairSpan),
      ...this.slots.flatMap((slot, i) => [...get(work), ...get(this.c8), ...i32(i), ...mul, ...add, ...set(slot)]),
    ];
  }
  /** The block's values in a row array at `base` (float64, `c` a row): `base + rowAt + j8`, or the next row's. */
  row = (base: Local, next = 0): Code => [...this.f.get(base), ...this.f.get(next ? this.o1 : this.o), ...op.add];
  /** The block's values in a per-channel float64 array. */
  ch8 = (base: Local): Code => [...this.f.get(base), ...this.f.get(this.j8), ...op.add];
  /** The block's values in a per-channel float32 array. */
  ch4 = (base: Local): Code => [...this.f.get(base), ...this.f.get(this.j4), ...op.add];

  /** `block(lanes)` for each four channels, then for each channel left (j4, j8: the first one's byte offsets). */
  channels(block: (lanes: Lanes) => Code): Code {
    const { get, set, increment } = this.f;
    const { i32, add } = op;
    const run = (width: 4 | 1): Code => [
      ...op.block,
      ...op.loop,
      ...get(this.j4),
      ...i32(width * 4),
      ...add,
      ...get(this.c4),
      ...op.gtU,
      ...op.brIf(1),
      ...block(new Lanes(this.f, width)),
      ...increment(this.j4, i32(width * 4)),
      ...increment(this.j8, i32(width * 8)),
      ...op.br(0),
      ...op.end,
      ...op.end,
    ];
    return [...i32(0), ...set(this.j4), ...i32(0), ...set(this.j8), ...run(4), ...run(1)];
  }

  /** {@link channels} in each row, in order (`o`: the block's byte offset in a row array). */
  rows(block: (lanes: Lanes) => Code): Code {
    const { get, set, increment } = this.f;
    return [
      ...op.i32(0),
      ...set(this.rowAt),
      ...doWhile([
        ...this.channels((lanes) => [...get(this.rowAt), ...get(this.j8), ...op.add, ...set(this.o), ...block(lanes)]),
        ...increment(this.rowAt, get(this.c8)),
      ], [...get(this.rowAt), ...get(this.span), ...op.ne]),
    ];
  }

  /**
   * {@link rows} two rows at a time, `block(lanes, 2)` (`o1`: the block's
   * offset in the second row), then `block(lanes, 1)` for an odd last row.
   */
  rowPairs(block: (lanes: Lanes, rows: 1 | 2) => Code): Code {
    const { get, set, increment } = this.f;
    const at = (more: Code): Code => [...get(this.rowAt), ...get(this.j8), ...op.add, ...set(this.o), ...more];
    return [
      ...op.i32(0),
      ...set(this.rowAt),
      ...get(this.pairSpan),
      ...op.if,
      ...doWhile([
        ...this.channels((l) => at([...get(this.o), ...get(this.c8), ...op.add, ...set(this.o1), ...block(l, 2)])),
        ...increment(this.rowAt, [...get(this.c8), ...get(this.c8), ...op.add]),
      ], [...get(this.rowAt), ...get(this.pairSpan), ...op.ne]),
      ...op.end,
      ...get(this.rowAt),
      ...get(this.span),
      ...op.ne,
      ...op.if,
      ...this.channels((l) => at(block(l, 1))),
      ...op.end,
    ];
  }
}

/** The float64 terms `values` added in order to what is on the stack before them (the last add left to the caller). */
const terms = (values: Code[]): Code => values.flatMap((v, i) => (i ? [...op.f64x2Add, ...v] : v));

/**
 * `bnForward(x, out, dev, rsqrt, g, b, mm, mv, rows, c, work, divide,
 * scale, epsilon, eps32, decay)`: the kind's training forward pass over
 * `rows` rows of `c` channels (float64 `x`, `out`, `dev`; float64 `rsqrt` of
 * `c`; float32 γ `g`, β `b`, moving mean `mm` and variance `mv`; `work`:
 * {@link WORK_SLOTS} · `c` float64s of scratch). A value's share of a mean
 * is `fround(v) / scale` when `divide` (`scale` = rows), else `fround(v) ·
 * scale` (`scale` = 1 / rows, a power of two); `eps32` and `decay` are
 * float32 values, `epsilon` the JS number.
 */
export function batchNormForwardFunction(): FunctionDef {
  const f = new Func("bnForward");
  const [x, out, dev, rsqrt, g, b, mm, mv, rows, c, work, divide] = f.params(
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
    "work",
    "divide",
  );
  const [scale, epsilon, eps32, decay] = ["scale", "epsilon", "eps32", "decay"].map((n) => f.param(n, F64));
  const w = new Walk(f, rows, c, work);
  // The per-channel sums (float64), the mean (float32 and float64), √(variance + ε), γ and β as float64.
  const [sums, mean32, mean64, root, gamma64, beta64] = w.slots;
  const [SCALE, EPS, EPS32, DECAY, ONE, t, t1, mean, variance] = f.locals(
    V128,
    "SCALE",
    "EPS",
    "EPS32",
    "DECAY",
    "ONE",
    "t",
    "t1",
    "mean",
    "variance",
  );
  const { get, set, tee } = f;
  const f32Splat = (v: Local): Code => [...get(v), ...op.f32DemoteF64, ...op.f32x4Splat];
  // Each row's share of a mean, of the float32 vector on the stack (multiplied or divided, as `divide` says).
  const shared = (pass: (share: Code) => Code): Code => [
    ...get(divide),
    ...op.if,
    ...pass([...get(SCALE), ...op.f32x4Div]),
    ...op.else,
    ...pass([...get(SCALE), ...op.f32x4Mul]),
    ...op.end,
  ];
  // sums[j] += t[j] (then t1[j], the next row's).
  const addRows = (l: Lanes, n: 1 | 2): Code => {
    const vs = [t, t1].slice(0, n);
    return l.addF64(w.ch8(sums), terms(vs.map((v) => low(f, v))), terms(vs.map((v) => high(f, v))));
  };
  const zeroSums = w.channels((l) => l.storeF64(w.ch8(sums), op.v128Zero, op.v128Zero));
  // out = fround(β + (fround(x) − mean) · γ / root), float64, channels 2h and 2h + 1.
  const output = (l: Lanes, h: 0 | 1): Code => [
    ...l.f64(w.ch8(beta64), h),
    ...l.f64(w.row(x), h),
    ...round,
    ...l.f64(w.ch8(mean64), h),
    ...op.f64x2Sub,
    ...l.f64(w.ch8(gamma64), h),
    ...op.f64x2Mul,
    ...l.f64(w.ch8(root), h),
    ...op.f64x2Div,
    ...op.f64x2Add,
    ...round,
  ];
  return f.build([
    ...w.setup,
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
    // mean = fround(Σ fround(fround(x) / N)), each channel's sum in float64, rows in order.
    ...zeroSums,
    ...shared((share) =>
      w.rowPairs((l, n) => [
        ...[t, t1].slice(0, n).flatMap((v, r) => [...l.narrow(w.row(x, r)), ...share, ...set(v)]),
        ...addRows(l, n),
      ])
    ),
    ...w.channels((l) => [
      ...l.narrow(w.ch8(sums)),
      ...set(mean),
      ...l.storeF32(w.ch4(mean32), get(mean)),
      ...l.storeF64(w.ch8(mean64), low(f, mean), high(f, mean)),
      ...l.storeF64(w.ch8(sums), op.v128Zero, op.v128Zero),
    ]),
    // dev = fround(fround(x) − mean); variance = fround(Σ fround(fround(dev²) / N)).
    ...shared((share) =>
      w.rowPairs((l, n) => [
        ...l.f32(w.ch4(mean32)),
        ...set(mean),
        ...[t, t1].slice(0, n).flatMap((v, r) => [
          ...l.narrow(w.row(x, r)),
          ...get(mean),
          ...op.f32x4Sub,
          ...set(v),
          ...l.storeF64(w.row(dev, r), low(f, v), high(f, v)),
          ...get(v),
          ...get(v),
          ...op.f32x4Mul,
          ...share,
          ...set(v),
        ]),
        ...addRows(l, n),
      ])
    ),
    ...w.channels((l) => [
      ...l.f32(w.ch4(mean32)),
      ...set(mean),
      ...l.narrow(w.ch8(sums)),
      ...set(variance),
      // The moving averages: m − (m − v) · decay, in float32.
      ...[[mm, mean], [mv, variance]].flatMap(([moving, value]) => [
        ...l.f32(w.ch4(moving)),
        ...tee(t),
        ...get(t),
        ...get(value),
        ...op.f32x4Sub,
        ...get(DECAY),
        ...op.f32x4Mul,
        ...op.f32x4Sub,
        ...set(t),
        ...l.storeF32(w.ch4(moving), get(t)),
      ]),
      // root = √(variance + epsilon) in float64; rsqrt = fround(1 / √fround(variance + eps32)).
      ...l.storeF64(
        w.ch8(root),
        [...low(f, variance), ...get(EPS), ...op.f64x2Add, ...op.f64x2Sqrt],
        [...high(f, variance), ...get(EPS), ...op.f64x2Add, ...op.f64x2Sqrt],
      ),
      ...get(variance),
      ...get(EPS32),
      ...op.f32x4Add,
      ...set(t),
      ...l.storeF64(
        w.ch8(rsqrt),
        [...get(ONE), ...low(f, t), ...op.f64x2Sqrt, ...op.f64x2Div, ...round],
        [...get(ONE), ...high(f, t), ...op.f64x2Sqrt, ...op.f64x2Div, ...round],
      ),
      ...[[g, gamma64], [b, beta64]].flatMap(([from, to]) => [
        ...l.f32(w.ch4(from)),
        ...set(t),
        ...l.storeF64(w.ch8(to), low(f, t), high(f, t)),
      ]),
    ]),
    ...w.rows((l) => l.storeF64(w.row(out), output(l, 0), output(l, 1))),
  ]);
}

/**
 * `bnBackward(dy, dev, rsqrt, g, into, gammaGrad, betaGrad, rows, c, work,
 * count)`: the kind's backward pass over `rows` rows of `c` channels
 * (float64 `dy`, `dev` and the input gradient `into`, written; float64
 * `rsqrt` of `c` and γ's and β's gradients, added into; float32 γ `g`;
 * `work` as for the forward pass), `count` being `rows` as a float64. Each
 * channel's `−½ · rsqrt³` must be a float32 value (see
 * {@link cubesAreFloat32}): it is computed in float32.
 */
export function batchNormBackwardFunction(): FunctionDef {
  const f = new Func("bnBackward");
  const [dy, dev, rsqrt, g, into, gammaGrad, betaGrad, rows, c, work] = f.params(
    "dy",
    "dev",
    "rsqrt",
    "g",
    "into",
    "gammaGrad",
    "betaGrad",
    "rows",
    "c",
    "work",
  );
  const count = f.param("count", F64);
  const w = new Walk(f, rows, c, work);
  // float32: rsqrt and −½ · rsqrt³; float64: the four sums, then 2 · fround(Σ dVar / N) and the mean's share.
  const [k32, cube32, sumDy, sumDyX, dMean, dVar, perDev, perRow] = w.slots;
  const [ROWS, HALF, TWO, k, t, dyg, gv, lo, hi] = f.locals(
    V128,
    "ROWS",
    "HALF",
    "TWO",
    "k",
    "t",
    "dyg",
    "gv",
    "lo",
    "hi",
  );
  const [ds, es, sx, dm, dv] = ["d", "e", "sx", "dm", "dv"].map((n) => f.locals(V128, `${n}0`, `${n}1`));
  const cube = f.local("cube", V128);
  const { get, set } = f;
  const mul32 = (a: Code, b: Code): Code => [...a, ...b, ...op.f32x4Mul];
  const zero = (l: Lanes, ...slots: Local[]) => slots.flatMap((s) => l.storeF64(w.ch8(s), op.v128Zero, op.v128Zero));
  // grad[j] += fround(sum[j]), float64.
  const addRounded = (l: Lanes, grad: Local, sum: Local): Code =>
    l.addF64(w.ch8(grad), [...l.f64(w.ch8(sum), 0), ...round], [...l.f64(w.ch8(sum), 1), ...round]);
  // fround(perDev · dev), channels 2h and 2h + 1.
  const share = (
    l: Lanes,
    h: 0 | 1,
  ): Code => [...l.f64(w.ch8(perDev), h), ...l.f64(w.row(dev), h), ...op.f64x2Mul, ...round];
  return f.build([
    ...w.setup,
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
    ...w.channels((l) => [
      ...l.narrow(w.ch8(rsqrt)),
      ...set(k),
      ...l.storeF32(w.ch4(k32), get(k)),
      ...l.storeF32(w.ch4(cube32), mul32(mul32(mul32(get(k), get(k)), get(k)), get(HALF))),
      ...zero(l, sumDy, sumDyX, dMean, dVar),
    ]),
    // The batchNorm's gradients: Σ dy, Σ dy · fround(dev · k), Σ k · dy·γ, Σ (−½k³ · dev) · dy·γ; x's: dy · k · γ.
    ...w.rowPairs((l, n) => {
      const rows = [0, 1].slice(0, n) as (0 | 1)[];
      const add = (slot: Local, vs: Local[]) =>
        l.addF64(w.ch8(slot), terms(vs.map((v) => low(f, v))), terms(vs.map((v) => high(f, v))));
      return [
        ...l.f32(w.ch4(k32)),
        ...set(k),
        ...l.f32(w.ch4(g)),
        ...set(gv),
        ...l.f32(w.ch4(cube32)),
        ...set(cube),
        ...rows.flatMap((r) => [
          ...l.narrow(w.row(dy, r)),
          ...set(ds[r]),
          ...l.narrow(w.row(dev, r)),
          ...set(es[r]),
          ...mul32(get(ds[r]), mul32(get(es[r]), get(k))),
          ...set(sx[r]),
          ...mul32(get(ds[r]), get(gv)),
          ...set(dyg),
          ...mul32(get(k), get(dyg)),
          ...set(dm[r]),
          ...mul32(mul32(get(cube), get(es[r])), get(dyg)),
          ...set(dv[r]),
          ...mul32(mul32(get(ds[r]), get(k)), get(gv)),
          ...set(t),
          ...l.storeF64(w.row(into, r), low(f, t), high(f, t)),
        ]),
        ...add(sumDy, ds.slice(0, n)),
        ...add(sumDyX, sx.slice(0, n)),
        ...add(dMean, dm.slice(0, n)),
        ...add(dVar, dv.slice(0, n)),
      ];
    }),
    // γ's and β's; then 2 · fround(fround(Σ dVar) / N) for the variance's share, and Σ t (below) from zero.
    ...w.channels((l) => [
      ...addRounded(l, gammaGrad, sumDyX),
      ...addRounded(l, betaGrad, sumDy),
      ...l.narrow(w.ch8(dVar)),
      ...get(ROWS),
      ...op.f32x4Div,
      ...set(t),
      ...l.storeF64(w.ch8(perDev), [...low(f, t), ...get(TWO), ...op.f64x2Mul], [
        ...high(f, t),
        ...get(TWO),
        ...op.f64x2Mul,
      ]),
      ...zero(l, sumDy),
    ]),
    // Through the variance: t = fround(2 · perDev · dev) added to x's gradient, Σ t to the mean's.
    ...w.rows((l) => [
      ...share(l, 0),
      ...set(lo),
      ...share(l, 1),
      ...set(hi),
      ...l.addF64(w.ch8(sumDy), get(lo), get(hi)),
      ...l.storeF64(
        w.row(into),
        [...l.f64(w.row(into), 0), ...get(lo), ...op.f64x2Add, ...round],
        [...l.f64(w.row(into), 1), ...get(hi), ...op.f64x2Add, ...round],
      ),
    ]),
    // The mean's: fround(fround(−fround(Σ dMean) − fround(Σ t)) / N), added to every row of x's.
    ...w.channels((l) => [
      ...l.narrow(w.ch8(dMean)),
      ...op.f32x4Neg,
      ...l.narrow(w.ch8(sumDy)),
      ...op.f32x4Sub,
      ...get(ROWS),
      ...op.f32x4Div,
      ...set(t),
      ...l.storeF64(w.ch8(perRow), low(f, t), high(f, t)),
    ]),
    ...w.rows((l) =>
      l.storeF64(
        w.row(into),
        [...l.f64(w.row(into), 0), ...l.f64(w.ch8(perRow), 0), ...op.f64x2Add, ...round],
        [...l.f64(w.row(into), 1), ...l.f64(w.ch8(perRow), 1), ...op.f64x2Add, ...round],
      )
    ),
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
