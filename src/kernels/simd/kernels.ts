/**
 * The product kernels in WebAssembly SIMD: `pack` copies a block of a matrix
 * of any strides into panels a few columns wide (contiguous along the inner
 * dimension, zero-padded), and `panels` multiplies packed panels, six rows
 * by eight columns at a time held in twelve 4-lane registers. With the
 * relaxed-SIMD multiply-add the machine's fused multiply-add does one
 * multiply and one add per lane in a single instruction where the engine maps
 * it to FMA (V8 does; JavaScriptCore emits a multiply and an add); without
 * it, a multiply and an add. Both round once per product term at most, in
 * float32: the tfjs path's precision. The module assembles them with the
 * kernels of their own files (`adam.ts`, `epilogues.ts`, `column.ts`,
 * `dropout.ts`, `lstm_cell.ts`, …) into one WebAssembly module.
 *
 * @module
 */
import { assemble, type Code, doWhile, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";
import { biasFunction, narrowFunction, slopesFunction, widenFunction } from "./epilogues.ts";
import { tapsFunction } from "./filter_taps.ts";
import { convolveFunction } from "./convolve.ts";
import { type PoolGrad, poolGradFunction } from "./max_pool_grad.ts";
import { batchNormBackwardFunction, batchNormForwardFunction } from "./batch_norm.ts";
import { scatterFunction } from "./scatter.ts";
import { type Dropout, dropoutFunction } from "./dropout.ts";
import { type ColumnProduct, dotsFunction, lanesFunction } from "./column.ts";
import { type LstmStep, lstmStepFunction } from "./lstm_cell.ts";
import { adamFunction } from "./adam.ts";

/** Rows of a packed panel of the left operand (A). */
export const MR = 6;
/** Columns of a packed panel of the right operand (B). */
export const NR = 8;

/**
 * `for (w = 0; ; w = min(w + step, last)) { body; if (w == last) break; }`:
 * blocks of `step` that end exactly at `last + step`, the last one
 * overlapping its neighbour when the width is not a multiple of `step`
 * (a panel of 6 floats moves as vectors at 0 and 2).
 */
const overlapping = (f: Func, w: Local, last: Code, step: number, body: Code): Code => [
  ...op.i32(0),
  ...f.set(w),
  ...op.block,
  ...op.loop,
  ...body,
  ...f.get(w),
  ...last,
  ...op.eq,
  ...op.brIf(1),
  ...last,
  ...f.get(w),
  ...op.i32(step),
  ...op.add,
  ...f.tee(w),
  ...f.get(w),
  ...last,
  ...op.gtU,
  ...op.select,
  ...f.set(w),
  ...op.br(0),
  ...op.end,
  ...op.end,
];

/**
 * `pack(src, outer, inner, count, depth, dst, width)`: for `count` lines of
 * `depth` values each (line `l`, value `k` at byte `src + l·outer + k·inner`),
 * writes panels of `width` (4 to 8) lines: `dst[panel][k][w]`, zero past
 * `count`. A full panel moves as vectors when its lines are adjacent floats
 * (`outer` = 4), or by 4×4 transposes in registers when each line's values
 * are (`inner` = 4, `depth` a multiple of 4: 3× faster than one float at a
 * time here); the rest float by float.
 */
function packFunction(): FunctionDef {
  const f = new Func("pack");
  const [src, outer, inner, count, depth, dst, width] = f.params(
    "src",
    "outer",
    "inner",
    "count",
    "depth",
    "dst",
    "width",
  );
  const [base, k, w, addr, full] = f.locals(I32, "base", "k", "w", "addr", "full");
  const [r0, r1, r2, r3, t0, t1, t2, t3] = f.locals(V128, "r0", "r1", "r2", "r3", "t0", "t1", "t2", "t3");
  const { get, set, increment } = f;
  const { i32, add, mul, leU, and } = op;
  // The address of value k of line base + w: src + (base + w)·outer + k·inner (inner given).
  const valueAddress = (innerStride: Code): Code => [
    ...get(src),
    ...get(base),
    ...get(w),
    ...add,
    ...get(outer),
    ...mul,
    ...add,
    ...get(k),
    ...innerStride,
    ...mul,
    ...add,
  ];
  const vectors: Code = [
    ...i32(0),
    ...set(k),
    ...get(src),
    ...get(base),
    ...i32(4),
    ...mul,
    ...add,
    ...set(addr),
    ...doWhile([
      ...overlapping(f, w, [...get(width), ...i32(4), ...mul, ...i32(16), ...op.sub], 16, [
        ...get(dst),
        ...get(w),
        ...add,
        ...get(addr),
        ...get(w),
        ...add,
        ...op.v128Load(),
        ...op.v128Store(),
      ]),
      ...increment(dst, [...get(width), ...i32(4), ...mul]),
      ...increment(addr, get(inner)),
      ...increment(k, i32(1)),
    ], [...get(k), ...get(depth), ...op.ne]),
  ];
  // Line j of a block of four at addr + j·outer; t = pairs interleaved, then r = the columns.
  const load = (j: number, into: Local): Code => [
    ...get(addr),
    ...(j ? [...get(outer), ...i32(j), ...mul, ...add] : []),
    ...op.v128Load(),
    ...set(into),
  ];
  const mix = (x: Local, y: Local, lanes: number[], into: Local): Code => [
    ...get(x),
    ...get(y),
    ...op.shuffle32(lanes),
    ...set(into),
  ];
  const store = (j: number, from: Local): Code => [
    ...get(dst),
    ...get(k),
    ...get(width),
    ...mul,
    ...get(w),
    ...add,
    ...i32(4),
    ...mul,
    ...add,
    ...(j ? [...get(width), ...i32(4 * j), ...mul, ...add] : []),
    ...get(from),
    ...op.v128Store(),
  ];
  const transposes: Code = [
    ...i32(0),
    ...set(k),
    ...doWhile([
      ...overlapping(f, w, [...get(width), ...i32(4), ...op.sub], 4, [
        ...valueAddress(i32(4)),
        ...set(addr),
        ...load(0, r0),
        ...load(1, r1),
        ...load(2, r2),
        ...load(3, r3),
        ...mix(r0, r1, [0, 4, 1, 5], t0),
        ...mix(r0, r1, [2, 6, 3, 7], t1),
        ...mix(r2, r3, [0, 4, 1, 5], t2),
        ...mix(r2, r3, [2, 6, 3, 7], t3),
        ...mix(t0, t2, [0, 1, 4, 5], r0),
        ...mix(t0, t2, [2, 3, 6, 7], r1),
        ...mix(t1, t3, [0, 1, 4, 5], r2),
        ...mix(t1, t3, [2, 3, 6, 7], r3),
        ...store(0, r0),
        ...store(1, r1),
        ...store(2, r2),
        ...store(3, r3),
      ]),
      ...increment(k, i32(4)),
    ], [...get(k), ...get(depth), ...op.ne]),
    ...get(dst),
    ...get(depth),
    ...get(width),
    ...mul,
    ...i32(4),
    ...mul,
    ...add,
    ...set(dst),
  ];
  const floats: Code = [
    ...i32(0),
    ...set(k),
    ...doWhile([
      ...i32(0),
      ...set(w),
      ...doWhile([
        ...get(base),
        ...get(w),
        ...add,
        ...get(count),
        ...op.ltU,
        ...op.if,
        ...get(dst),
        ...valueAddress(get(inner)),
        ...op.f32Load(),
        ...op.f32Store(),
        ...op.else,
        ...get(dst),
        ...op.f32Zero,
        ...op.f32Store(),
        ...op.end,
        ...increment(dst, i32(4)),
        ...increment(w, i32(1)),
      ], [...get(w), ...get(width), ...op.ne]),
      ...increment(k, i32(1)),
    ], [...get(k), ...get(depth), ...op.ne]),
  ];
  return f.build([
    ...i32(0),
    ...set(base),
    ...doWhile([
      ...get(base),
      ...get(width),
      ...add,
      ...get(count),
      ...leU,
      ...set(full),
      ...get(full),
      ...get(outer),
      ...i32(4),
      ...op.eq,
      ...and,
      ...op.if,
      ...vectors,
      ...op.else,
      ...get(full),
      ...get(inner),
      ...i32(4),
      ...op.eq,
      ...and,
      ...get(depth),
      ...i32(3),
      ...and,
      ...op.eqz,
      ...and,
      ...op.if,
      ...transposes,
      ...op.else,
      ...floats,
      ...op.end,
      ...op.end,
      ...increment(base, get(width)),
    ], [...get(base), ...get(count), ...op.ltU]),
  ]);
}

/**
 * `panels(pa, pb, c, ldc, depth, count, accumulate)`: for `count` packed A
 * panels from `pa` (each `depth` × {@link MR}) against one packed B panel at
 * `pb` (`depth` × {@link NR}), writes (or adds into, when `accumulate` ≠ 0)
 * the MR×NR tiles of C at `c`, `c + MR·ldc`, … (`ldc`: bytes between rows of
 * C). Twelve 4-lane accumulators, two B vectors and one broadcast A value:
 * 15 registers, all x64 gives V8's code (6×8 ran 35 GFLOP/s on one core on
 * Deno, 4×8 29). The depth loop is unrolled `unroll` times, with a loop of
 * single steps for the rest.
 */
function panelsFunction(fused: boolean, unroll: number): FunctionDef {
  const f = new Func("panels");
  const [pa, pb, c, ldc, depth, count, accumulate] = f.params("pa", "pb", "c", "ldc", "depth", "count", "accumulate");
  const [kb, stop, stopUnrolled, row] = f.locals(I32, "kb", "stop", "stopUnrolled", "row");
  // The accumulators: row r of the tile, columns 4h to 4h + 3.
  const accumulators = Array.from({ length: MR }, (_, r) => f.locals(V128, `acc${r}_0`, `acc${r}_1`));
  const acc = (r: number, h: number) => accumulators[r][h];
  const [b0, b1, a] = f.locals(V128, "b0", "b1", "a");
  const { get, set, tee } = f;
  const { i32, add, mul, end } = op;
  const madd = (target: Local, b: Local): Code =>
    fused
      ? [...get(a), ...get(b), ...get(target), ...op.f32x4RelaxedMadd, ...set(target)]
      : [...get(a), ...get(b), ...op.f32x4Mul, ...get(target), ...op.f32x4Add, ...set(target)];
  // `steps` steps of the depth loop, then both pointers move on.
  const steps = (count: number): Code => {
    const code: Code = [];
    for (let u = 0; u < count; u++) {
      code.push(...get(kb), ...op.v128Load(u * NR * 4), ...set(b0), ...get(kb), ...op.v128Load(u * NR * 4 + 16));
      code.push(...set(b1));
      for (let r = 0; r < MR; r++) {
        // The address is added here, not given as the load's offset: JavaScriptCore emits a broadcast from memory
        // only for a load without offset, and a scalar load, a move and a shuffle for the rest (22 -> 33 GFLOP/s
        // on one core on Bun; no change on Deno).
        const offset = (u * MR + r) * 4;
        code.push(...get(pa), ...(offset ? [...i32(offset), ...add] : []), ...op.load32Splat(0), ...set(a));
        code.push(...madd(acc(r, 0), b0), ...madd(acc(r, 1), b1));
      }
    }
    code.push(...get(pa), ...i32(MR * 4 * count), ...add, ...set(pa));
    code.push(...get(kb), ...i32(NR * 4 * count), ...add, ...set(kb));
    return code;
  };
  // while (kb != until) { steps }
  const loopUntil = (until: Local, count: number): Code => [
    ...op.block,
    ...get(kb),
    ...get(until),
    ...op.eq,
    ...op.brIf(0),
    ...doWhile(steps(count), [...get(kb), ...get(until), ...op.ne]),
    ...end,
  ];
  const zero: Code = [];
  for (let r = 0; r < MR; r++) for (let h = 0; h < 2; h++) zero.push(...op.v128Zero, ...set(acc(r, h)));
  const addC: Code = [], storeC: Code = [];
  for (let r = 0; r < MR; r++) {
    // row = c + r·ldc
    const rowAddr: Code = r === 0 ? get(c) : [...get(c), ...get(ldc), ...i32(r), ...mul, ...add];
    addC.push(...rowAddr, ...set(row));
    for (let h = 0; h < 2; h++) {
      addC.push(...get(row), ...op.v128Load(h * 16), ...get(acc(r, h)), ...op.f32x4Add, ...set(acc(r, h)));
    }
    storeC.push(...rowAddr, ...set(row));
    for (let h = 0; h < 2; h++) storeC.push(...get(row), ...get(acc(r, h)), ...op.v128Store(h * 16));
  }
  return f.build([
    ...op.loop,
    ...zero,
    ...get(pb),
    ...tee(kb),
    ...get(depth),
    ...i32(NR * 4),
    ...mul,
    ...add,
    ...set(stop),
    ...(unroll > 1
      ? [
        // stopUnrolled = pb + (depth - depth % unroll)·NR·4
        ...get(pb),
        ...get(depth),
        ...get(depth),
        ...i32(unroll),
        ...op.remU,
        ...op.sub,
        ...i32(NR * 4),
        ...mul,
        ...add,
        ...set(stopUnrolled),
        ...loopUntil(stopUnrolled, unroll),
      ]
      : []),
    ...loopUntil(stop, 1),
    ...get(accumulate),
    ...op.if,
    ...addC,
    ...end,
    ...storeC,
    ...get(c),
    ...get(ldc),
    ...i32(MR),
    ...mul,
    ...add,
    ...set(c),
    ...get(count),
    ...i32(1),
    ...op.sub,
    ...tee(count),
    ...op.brIf(0),
    ...end,
  ]);
}

/**
 * The kernels module's bytes: with the relaxed-SIMD multiply-add (`fused`) or
 * without, the products' depth loop unrolled `unroll` times.
 */
export function kernelModule(fused: boolean, maxPages: number, unroll = 1): Uint8Array<ArrayBuffer> {
  return assemble(
    [
      packFunction(),
      panelsFunction(fused, unroll),
      adamFunction(),
      widenFunction(),
      biasFunction(),
      slopesFunction(),
      narrowFunction(),
      tapsFunction(fused),
      convolveFunction(fused),
      poolGradFunction(),
      slopesFunction(true),
      batchNormForwardFunction(),
      batchNormBackwardFunction(),
      scatterFunction(fused),
      adamFunction(true),
      dropoutFunction(),
      dotsFunction(fused),
      lanesFunction(fused),
      lstmStepFunction(),
      dotsFunction(fused, false),
      lanesFunction(fused, false),
    ],
    maxPages,
  );
}

/** `adam`'s and `adam32`'s signature (adam.ts): byte addresses, the quads of weights, then Adam's eight scalars. */
export type AdamKernel = (
  w: number,
  g: number,
  m: number,
  v: number,
  quads: number,
  b1: number,
  ob1: number,
  b2: number,
  ob2: number,
  c1: number,
  c2: number,
  eps: number,
  nlr: number,
) => void;

/**
 * `slopes`' and `slopes64`'s signature: the values and their row bytes, the
 * layer's output, where to write, the sizes, the activation's code and the
 * bias gradient's address (0 for none).
 */
export type SlopesKernel = (
  src: number,
  ldc: number,
  below: number,
  dst: number,
  rows: number,
  cols: number,
  act: number,
  biasGrad: number,
) => void;

/** The exports of an instance of {@link kernelModule}. */
export interface Kernels {
  dropout: Dropout;
  dots: ColumnProduct;
  lanes: ColumnProduct;
  lstmStep: LstmStep;
  dots32: ColumnProduct;
  lanes32: ColumnProduct;
  pack(src: number, outer: number, inner: number, count: number, depth: number, dst: number, width: number): void;
  narrow(src: number, dst: number, count: number): void;
  panels(pa: number, pb: number, c: number, ldc: number, depth: number, count: number, accumulate: number): void;
  adam: AdamKernel;
  /** {@link Kernels.adam} with float32 gradients. */
  adam32: AdamKernel;
  widen(src: number, ldc: number, dst: number, rows: number, cols: number): void;
  bias(src: number, ldc: number, bias: number, dst: number, rows: number, cols: number, act: number): void;
  /** {@link Kernels.slopes} on a float64 product (the gradient in place). */
  slopes64: SlopesKernel;
  slopes: SlopesKernel;
  taps(
    x: number,
    dy: number,
    count: number,
    cols: number,
    colStep: number,
    rowStep: number,
    stride: number,
    offsets: number,
    taps: number,
    acc: number,
  ): void;
  convolve(
    x: number,
    positions: number,
    count: number,
    offsets: number,
    taps: number,
    w: number,
    out: number,
    stride: number,
    ranges: number,
  ): void;
  poolGrad: PoolGrad;
  bnForward(
    x: number,
    out: number,
    dev: number,
    rsqrt: number,
    g: number,
    b: number,
    mm: number,
    mv: number,
    rows: number,
    c: number,
    work: number,
    divide: number,
    scale: number,
    epsilon: number,
    eps32: number,
    decay: number,
  ): void;
  bnBackward(
    dy: number,
    dev: number,
    rsqrt: number,
    g: number,
    into: number,
    gammaGrad: number,
    betaGrad: number,
    rows: number,
    c: number,
    work: number,
    count: number,
  ): void;
  scatter(
    dy: number,
    dx: number,
    dyPos: number,
    dxPos: number,
    count: number,
    tapOffs: number,
    taps: number,
    depth: number,
    w: number,
    groups: number,
  ): void;
}
