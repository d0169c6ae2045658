/**
 * One time step of an LSTM layer's forward pass (src/engine/layers/
 * lstm_math.ts) in WebAssembly SIMD, for tfjs's default activations — tanh
 * for the cell, hardSigmoid for the gates: for every row of the batch and
 * two units at a time, the four gates from the input projection, the
 * recurrent product and the bias, the cell and the output. Every value is
 * the JS loop's: the same float64 operations in the same order (the gates'
 * hardSigmoid in float32 as tfjs rounds it, clipped with `pmax`/`pmin`,
 * which keep NaN and −0 as the JS comparisons do), and lstm_math.ts's own
 * tanh — its series below 1/16, its table of 2^(−i/64) and polynomial
 * above, ±1 past 20 — with both branches computed and one chosen per lane
 * (the JS loop's branches mispredict on a sequence's values). Tested bit for
 * bit against the JS loop (tests/lstm_cell_kernel_test.ts).
 *
 * @module
 */
import { type Code, doWhile, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";

/** tfjs multiplies by the float32 nearest 0.2 in hardSigmoid (`0.5 + 0.2·x`, clipped to [0, 1]). */
export const FIFTH: number = Math.fround(0.2);
/**
 * The constants of lstm_math.ts's `tanh` (its JS and this kernel read the
 * same ones): 64 / ln 2, and ln 2 / 64 in two parts; the first has 24
 * significant bits, so `j · LN2_64_HI` is exact for j < 2^29.
 */
export const STEPS_PER_LN2: number = 64 / Math.LN2;
export const LN2_64_HI: number = Math.fround(Math.LN2 / 64);
export const LN2_64_LO: number = Math.LN2 / 64 - LN2_64_HI;

/** The tables tanh reads: 2^(−i/64) for i < 64, then 2^(−i) for i < 64 (128 float64s). */
export function tanhTables(): Float64Array {
  const tables = new Float64Array(128);
  for (let i = 0; i < 64; i++) {
    tables[i] = 2 ** (-i / 64);
    tables[64 + i] = 2 ** -i;
  }
  return tables;
}

/** `c = a ∘ b` for float64x2 `a`, `b` given as code. */
const f64x2 = (a: Code, b: Code, operation: Code): Code => [...a, ...b, ...operation];
const constant = (v: number): Code => [...op.f64(v), ...op.f64x2Splat];

/**
 * lstm_math.ts's `tanh` of the float64x2 in `x`, into `out` (locals of `f`,
 * with scratch locals `a`, `t`, `u`, `j`, `q` and the tables' address).
 */
function tanh2(f: Func, x: Local, out: Local, s: Record<string, Local>, tables: Local): Code {
  const { get, set, tee } = f;
  const { a, t, u, q, j } = s;
  const g = get;
  // Horner: c0 − v·(c1 − v·(c2 − …)) written as the JS does, innermost first.
  const series: Code = [
    // q = x·x; x·(1 − q·(1/3 − q·(2/15 − q·(17/315 − q·(62/2835)))))
    ...f64x2(g(x), g(x), op.f64x2Mul),
    ...set(q),
    ...f64x2(constant(17 / 315), f64x2(g(q), constant(62 / 2835), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(constant(2 / 15), f64x2(g(q), g(t), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(constant(1 / 3), f64x2(g(q), g(t), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(constant(1), f64x2(g(q), g(t), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(g(x), g(t), op.f64x2Mul),
    ...set(q), // q: the series' value
  ];
  // A lane's table entry: tables + 8·index.
  const entry = (laneIndex: number, index: Code, base: number): Code => [
    ...get(tables),
    ...get(j),
    ...op.i32x4ExtractLane(laneIndex),
    ...index,
    ...op.i32(3),
    ...op.shl,
    ...op.add,
    ...op.f64Load(base),
  ];
  const table = (index: Code, base: number): Code => [
    ...entry(0, index, base),
    ...op.f64x2Splat,
    ...entry(1, index, base),
    ...op.f64x2ReplaceLane(1),
  ];
  const exp: Code = [
    // y = 2·a, with a clamped to 20 (lanes past it take ±1; the clamp keeps the table index in range)
    ...f64x2(constant(2), f64x2(g(a), constant(20), op.f64x2Pmin), op.f64x2Mul),
    ...set(u), // u: y
    // j = ⌊y·64/ln 2 + 0.5⌋ (toward zero; NaN to 0, as `| 0`)
    ...f64x2(f64x2(g(u), constant(STEPS_PER_LN2), op.f64x2Mul), constant(0.5), op.f64x2Add),
    ...op.i32x4TruncSatF64x2Zero,
    ...tee(j),
    ...op.f64x2ConvertLowI32x4,
    ...set(t), // t: j as float64
    // r = (y − j·hi) − j·lo
    ...f64x2(
      f64x2(g(u), f64x2(g(t), constant(LN2_64_HI), op.f64x2Mul), op.f64x2Sub),
      f64x2(g(t), constant(LN2_64_LO), op.f64x2Mul),
      op.f64x2Sub,
    ),
    ...set(u), // u: r
    // p = 1 − r·(1 − r·(1/2 − r·(1/6 − r·(1/24 − r·(1/120)))))
    ...f64x2(constant(1 / 24), f64x2(g(u), constant(1 / 120), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(constant(1 / 6), f64x2(g(u), g(t), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(constant(1 / 2), f64x2(g(u), g(t), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(constant(1), f64x2(g(u), g(t), op.f64x2Mul), op.f64x2Sub),
    ...set(t),
    ...f64x2(constant(1), f64x2(g(u), g(t), op.f64x2Mul), op.f64x2Sub),
    ...set(u), // u: p
    // e = 2^(−(j >> 6)) · 2^(−(j & 63)/64) · p
    ...table([...op.i32(6), ...op.shrU], 64 * 8),
    ...table([...op.i32(63), ...op.and], 0),
    ...op.f64x2Mul,
    ...get(u),
    ...op.f64x2Mul,
    ...set(u), // u: e
    // ((1 − e)·x) / ((1 + e)·a)
    ...f64x2(
      f64x2(f64x2(constant(1), g(u), op.f64x2Sub), g(x), op.f64x2Mul),
      f64x2(f64x2(constant(1), g(u), op.f64x2Add), g(a), op.f64x2Mul),
      op.f64x2Div,
    ),
    ...set(u), // u: the exponential branch's value
  ];
  return [
    ...get(x),
    ...op.f64x2Abs,
    ...set(a),
    ...series,
    ...exp,
    // a < 1/16: the series; a > 20: ±1 (x > 0 ? 1 : −1); else the exponential branch
    ...get(q),
    ...get(u),
    ...f64x2(g(a), constant(0.0625), op.f64x2Lt),
    ...op.v128Bitselect,
    ...set(u),
    ...constant(1),
    ...constant(-1),
    ...f64x2(g(x), op.v128Zero, op.f64x2Gt),
    ...op.v128Bitselect,
    ...get(u),
    ...f64x2(g(a), constant(20), op.f64x2Gt),
    ...op.v128Bitselect,
    ...set(out),
  ];
}

/** hardSigmoid as the forward pass keeps it: float32(0.5 + float32(0.2·float32(z))), for the two lanes of `z`. */
function hardSigmoid(z: Code): Code {
  return [
    ...z,
    ...op.demoteZero,
    ...op.f32(FIFTH),
    ...op.f32x4Splat,
    ...op.f32x4Mul,
    ...op.f32(0.5),
    ...op.f32x4Splat,
    ...op.f32x4Add,
    ...op.promoteLow,
  ];
}

/** hardSigmoid's value from what the forward pass keeps: clipped to [0, 1] (NaN and −0 kept). */
function clip(k: Code): Code {
  return [...k, ...constant(0), ...op.f64x2Pmax, ...constant(1), ...op.f64x2Pmin];
}

/**
 * `lstmStep(gates, z, zStride, bias, cells, actCells, hPrev, h, tables, n, cellStride, u, first, prev)`:
 * one time step for `n` rows. Row r's cell is at `cells + r·cellStride·u·8`
 * (its gates at `gates + r·cellStride·4u·8`, hPrev likewise): the caller
 * points `gates`, `cells`, `actCells` and `hPrev` at row 0's cell for this
 * step, and `cellStride` is the steps a row has. `z` (float32, rows
 * `zStride` bytes apart) is h·U, or 0 at the first step; `bias` (float64,
 * 4u) or 0; `prev` the bytes from a cell's c to the previous step's (unread
 * when `first`); `u` even. Writes the gates' kept values over their
 * projections, c, act(c), the old h into hPrev, and the new h.
 */
export function lstmStepFunction(): FunctionDef {
  const f = new Func("lstmStep");
  const [gates, z, zStride, bias, cells, actCells, hPrev, h, tables, n, cellStride, u, first, prev] = f.params(
    "gates",
    "z",
    "zStride",
    "bias",
    "cells",
    "actCells",
    "hPrev",
    "h",
    "tables",
    "n",
    "cellStride",
    "u",
    "first",
    "prev",
  );
  const [jb, g, s, zr, hr, br, gateBytes] = f.locals(I32, "jb", "g", "s", "zr", "hr", "br", "gateBytes");
  const [zi, zf, zc, zo, ki, kf, kc, ko, c, ka, a, t, w, q, j] = f.locals(
    V128,
    "zi",
    "zf",
    "zc",
    "zo",
    "ki",
    "kf",
    "kc",
    "ko",
    "c",
    "ka",
    "a",
    "t",
    "w",
    "q",
    "j",
  );
  const { get, set, increment } = f;
  const { i32, add, mul } = op;
  const scratch = { a, t, u: w, q, j };
  // Gate `k`'s pre-activation for units jb, jb + 1: (x·W + h·U) + b, as the JS adds them.
  const preActivation = (k: number, into: Local): Code => [
    // gates[g + k·u + j]
    ...get(g),
    ...get(gateBytes),
    ...i32(k),
    ...mul,
    ...add,
    ...op.v128Load(),
    ...set(into),
    ...get(z),
    ...op.if,
    ...get(into),
    ...get(zr),
    ...get(gateBytes),
    ...i32(k),
    ...mul,
    ...i32(1),
    ...op.shrU,
    ...add,
    ...op.load64Zero(),
    ...op.promoteLow,
    ...op.f64x2Add,
    ...set(into),
    ...op.end,
    ...get(bias),
    ...op.if,
    ...get(into),
    ...get(br),
    ...get(gateBytes),
    ...i32(k),
    ...mul,
    ...add,
    ...op.v128Load(),
    ...op.f64x2Add,
    ...set(into),
    ...op.end,
  ];
  const store = (k: number, value: Local): Code => [
    ...get(g),
    ...get(gateBytes),
    ...i32(k),
    ...mul,
    ...add,
    ...get(value),
    ...op.v128Store(),
  ];
  const unitPair: Code = [
    ...preActivation(0, zi),
    ...preActivation(1, zf),
    ...preActivation(2, zc),
    ...preActivation(3, zo),
    ...hardSigmoid(get(zi)),
    ...set(ki),
    ...hardSigmoid(get(zf)),
    ...set(kf),
    ...tanh2(f, zc, kc, scratch, tables),
    ...hardSigmoid(get(zo)),
    ...set(ko),
    ...store(0, ki),
    ...store(1, kf),
    ...store(2, kc),
    ...store(3, ko),
    // hPrev = h (before h is written)
    ...get(hPrev),
    ...get(s),
    ...add,
    ...get(h),
    ...get(hr),
    ...add,
    ...op.v128Load(),
    ...op.v128Store(),
    // c = (first ? 0 : clip(kf)·c₋₁) + clip(ki)·kc
    ...get(first),
    ...op.if,
    ...op.v128Zero,
    ...set(c),
    ...op.else,
    ...clip(get(kf)),
    ...get(cells),
    ...get(s),
    ...add,
    ...get(prev),
    ...add,
    ...op.v128Load(),
    ...op.f64x2Mul,
    ...set(c),
    ...op.end,
    ...get(c),
    ...clip(get(ki)),
    ...get(kc),
    ...op.f64x2Mul,
    ...op.f64x2Add,
    ...set(c),
    ...get(cells),
    ...get(s),
    ...add,
    ...get(c),
    ...op.v128Store(),
    ...tanh2(f, c, ka, scratch, tables),
    ...get(actCells),
    ...get(s),
    ...add,
    ...get(ka),
    ...op.v128Store(),
    // h = clip(ko)·ka
    ...get(h),
    ...get(hr),
    ...add,
    ...clip(get(ko)),
    ...get(ka),
    ...op.f64x2Mul,
    ...op.v128Store(),
  ];
  return f.build([
    ...get(u),
    ...i32(8),
    ...mul,
    ...set(gateBytes), // u units of float64: one gate's block
    ...doWhile([
      // this row: g, s (bytes into its cell's gates and c), zr, hr; br walks the bias
      ...get(gates),
      ...set(g),
      ...i32(0),
      ...set(s),
      ...get(z),
      ...set(zr),
      ...i32(0),
      ...set(hr),
      ...get(bias),
      ...set(br),
      ...i32(0),
      ...set(jb),
      ...doWhile([
        ...unitPair,
        ...increment(g, i32(16)),
        ...increment(s, i32(16)),
        ...increment(zr, i32(8)),
        ...increment(hr, i32(16)),
        ...increment(br, i32(16)),
        ...increment(jb, i32(2)),
      ], [...get(jb), ...get(u), ...op.ne]),
      // the next row: its cell is cellStride cells on; h's row and z's row follow
      ...increment(gates, [...get(gateBytes), ...i32(4), ...mul, ...get(cellStride), ...mul]),
      ...increment(cells, [...get(gateBytes), ...get(cellStride), ...mul]),
      ...increment(actCells, [...get(gateBytes), ...get(cellStride), ...mul]),
      ...increment(hPrev, [...get(gateBytes), ...get(cellStride), ...mul]),
      ...increment(h, get(gateBytes)),
      ...get(z),
      ...op.if,
      ...increment(z, get(zStride)),
      ...op.end,
      ...get(n),
      ...i32(1),
      ...op.sub,
      ...f.tee(n),
    ], []),
  ]);
}

/** `lstmStep`'s signature (byte addresses in the kernels' memory, then the sizes). */
export type LstmStep = (
  gates: number,
  z: number,
  zStride: number,
  bias: number,
  cells: number,
  actCells: number,
  hPrev: number,
  h: number,
  tables: number,
  n: number,
  cellStride: number,
  u: number,
  first: number,
  prev: number,
) => void;
