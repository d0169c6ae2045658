/**
 * A product with one column, `c = A · b` for float64 `A` (m×k) in the
 * kernels' memory and a float32 vector `b` (k), in float32: each value of A
 * narrowed to float32 as it is read (the values `narrow` would write), no
 * packing. The host engine makes such products for every Dense layer of one
 * unit (a regressor's output): the panels would pack A and compute eight
 * columns for the one used.
 *
 * Two layouts of A, one function each:
 * - `dots`, A's rows contiguous (`A·b`, a layer's forward): each row's dot
 *   product in four lanes, k ≡ 0, 1, 2, 3 (mod 4), then `(l0 + l2) + (l1 + l3)`,
 *   the remainder of k added term by term after.
 * - `lanes`, A transposed in memory (`Aᵀ·b` read from a k×m array, the
 *   kernel gradient `xᵀ·dz`): four rows of C a vector, each summing its terms
 *   in k's order, a block of `KC` from zero at a time added to the blocks
 *   before it, as the panels do (bit for bit theirs).
 *
 * With the relaxed-SIMD multiply-add (`fused`) each term is one fused
 * multiply-add where the engine has it, as in the panels.
 *
 * Measured on the tutorial's output layer: see `SimdKernels.#column` in
 * products.ts.
 *
 * @module
 */
import { type Code, doWhile, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";
import { KC } from "./share.ts";

/** The multiply-add `acc ← a · b + acc` of the vectors in locals, fused where the engine has it. */
function madd(f: Func, fused: boolean, a: Code, b: Code, acc: Local): Code {
  return fused
    ? [...a, ...b, ...f.get(acc), ...op.f32x4RelaxedMadd, ...f.set(acc)]
    : [...a, ...b, ...op.f32x4Mul, ...f.get(acc), ...op.f32x4Add, ...f.set(acc)];
}

/** Four float64 values at `addr` (two vectors, 16 bytes apart) as one float32x4 vector. */
function fourNarrowed(addr: Code): Code {
  return [
    ...addr,
    ...op.v128Load(),
    ...op.demoteZero,
    ...addr,
    ...op.v128Load(16),
    ...op.demoteZero,
    ...op.shuffle32([0, 1, 4, 5]),
  ];
}

/** One float64 value at `addr` as float32 in lane 0, zeros above. */
function oneNarrowed(addr: Code): Code {
  return [...addr, ...op.load64Zero(), ...op.demoteZero];
}

/** How A's values are read: float64 (narrowed as read) or float32, four or one at a time, and their size. */
function reads(float64: boolean) {
  return float64 ? { four: fourNarrowed, one: oneNarrowed, size: 8 } : {
    four: (addr: Code) => [...addr, ...op.v128Load()],
    one: (addr: Code) => [...addr, ...op.load32Zero()],
    size: 4,
  };
}

/**
 * `dots(a, lda, b, c, ldc, m, k)`: `c[r·ldc] = Σ a[r·lda + j] · b[j]` over
 * j < k for r < m (byte strides; A float64, or float32 for `dots32`; b and c
 * float32; m, k ≥ 1).
 */
export function dotsFunction(fused: boolean, float64 = true): FunctionDef {
  const f = new Func(float64 ? "dots" : "dots32");
  const read = reads(float64);
  const [a, lda, b, c, ldc, m, k] = f.params("a", "lda", "b", "c", "ldc", "m", "k");
  const [row, at, bAt, j, whole] = f.locals(I32, "row", "at", "bAt", "j", "whole");
  const [acc, sum] = f.locals(V128, "acc", "sum");
  const { get, set, tee, increment } = f;
  const { i32 } = op;
  return f.build([
    // k rounded down to whole vectors
    ...get(k),
    ...i32(-4),
    ...op.and,
    ...set(whole),
    ...get(a),
    ...set(row),
    ...doWhile([
      ...op.v128Zero,
      ...set(acc),
      ...get(row),
      ...set(at),
      ...get(b),
      ...set(bAt),
      ...i32(0),
      ...set(j),
      // four terms at a time
      ...op.block,
      ...get(whole),
      ...op.eqz,
      ...op.brIf(0),
      ...doWhile([
        ...madd(f, fused, read.four(get(at)), [...get(bAt), ...op.v128Load()], acc),
        ...increment(at, i32(4 * read.size)),
        ...increment(bAt, i32(16)),
        ...increment(j, i32(4)),
      ], [...get(j), ...get(whole), ...op.ne]),
      ...op.end,
      // (l0 + l2) + (l1 + l3), in lane 0
      ...get(acc),
      ...get(acc),
      ...get(acc),
      ...op.shuffle32([2, 3, 2, 3]),
      ...op.f32x4Add,
      ...set(sum),
      ...get(sum),
      ...get(sum),
      ...get(sum),
      ...op.shuffle32([1, 1, 1, 1]),
      ...op.f32x4Add,
      ...set(sum),
      // the rest of k, a term at a time (lane 0)
      ...op.block,
      ...get(j),
      ...get(k),
      ...op.eq,
      ...op.brIf(0),
      ...doWhile([
        ...madd(f, fused, read.one(get(at)), [...get(bAt), ...op.load32Zero()], sum),
        ...increment(at, i32(read.size)),
        ...increment(bAt, i32(4)),
        ...increment(j, i32(1)),
      ], [...get(j), ...get(k), ...op.ne]),
      ...op.end,
      ...get(c),
      ...get(sum),
      ...op.store32Lane(0),
      ...increment(c, get(ldc)),
      ...increment(row, get(lda)),
      ...get(m),
      ...i32(1),
      ...op.sub,
      ...tee(m),
    ], []),
  ]);
}

/**
 * `lanes(a, lda, b, c, ldc, m, k)`: `c[r·ldc] = Σ a[j·lda + r] · b[j]` over
 * j < k, in j's order from zero, for r < m (byte strides; A float64, or
 * float32 for `lanes32`, with C's rows adjacent; b and c float32; m, k ≥ 1).
 * Four rows a vector; the last m mod 4 one at a time in lane 0.
 */
export function lanesFunction(fused: boolean, float64 = true): FunctionDef {
  const f = new Func(float64 ? "lanes" : "lanes32");
  const read = reads(float64);
  const [a, lda, b, c, ldc, m, k] = f.params("a", "lda", "b", "c", "ldc", "m", "k");
  const [at, bAt, left, groups, blockLeft, started] = f.locals(
    I32,
    "at",
    "bAt",
    "left",
    "groups",
    "blockLeft",
    "started",
  );
  const [acc, total] = f.locals(V128, "acc", "total");
  const { get, set, tee, increment } = f;
  const { i32, add } = op;
  // Sums the rows at `a` (four, or one) over the depth into `total`: each block of KC terms from zero, then added
  // to the blocks before it, as the panels sum (the first block's sum is the total so far).
  const sumRows = (four: boolean): Code => [
    ...op.v128Zero,
    ...set(acc),
    ...i32(0),
    ...set(started),
    ...i32(KC),
    ...set(blockLeft),
    ...get(a),
    ...set(at),
    ...get(b),
    ...set(bAt),
    ...get(k),
    ...set(left),
    ...doWhile([
      ...madd(f, fused, four ? read.four(get(at)) : read.one(get(at)), [...get(bAt), ...op.load32Splat()], acc),
      ...increment(at, get(lda)),
      ...increment(bAt, i32(4)),
      ...get(left),
      ...i32(1),
      ...op.sub,
      ...set(left),
      ...get(blockLeft),
      ...i32(1),
      ...op.sub,
      ...tee(blockLeft),
      ...op.eqz,
      ...get(left),
      ...op.eqz,
      ...op.or,
      ...op.if,
      // total = started ? total + acc : acc
      ...get(started),
      ...op.if,
      ...get(total),
      ...get(acc),
      ...op.f32x4Add,
      ...set(total),
      ...op.else,
      ...get(acc),
      ...set(total),
      ...op.end,
      ...i32(1),
      ...set(started),
      ...op.v128Zero,
      ...set(acc),
      ...i32(KC),
      ...set(blockLeft),
      ...op.end,
      ...get(left),
    ], []),
  ];
  const storeLane = (lane: number): Code => [
    ...get(c),
    ...(lane ? [...get(ldc), ...i32(lane), ...op.mul, ...add] : []),
    ...get(total),
    ...op.store32Lane(lane),
  ];
  return f.build([
    ...get(m),
    ...i32(2),
    ...op.shrU,
    ...tee(groups),
    ...op.if,
    ...doWhile([
      ...sumRows(true),
      ...storeLane(0),
      ...storeLane(1),
      ...storeLane(2),
      ...storeLane(3),
      ...increment(a, i32(4 * read.size)),
      ...get(ldc),
      ...i32(4),
      ...op.mul,
      ...get(c),
      ...add,
      ...set(c),
      ...get(groups),
      ...i32(1),
      ...op.sub,
      ...tee(groups),
    ], []),
    ...op.end,
    ...get(m),
    ...i32(3),
    ...op.and,
    ...tee(left),
    ...op.if,
    ...get(left),
    ...set(groups),
    ...doWhile([
      ...sumRows(false),
      ...storeLane(0),
      ...increment(a, i32(read.size)),
      ...increment(c, get(ldc)),
      ...get(groups),
      ...i32(1),
      ...op.sub,
      ...tee(groups),
    ], []),
    ...op.end,
  ]);
}

/** `dots`' and `lanes`' signature (byte addresses and strides in the kernels' memory, then the sizes). */
export type ColumnProduct = (a: number, lda: number, b: number, c: number, ldc: number, m: number, k: number) => void;
