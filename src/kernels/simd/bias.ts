/**
 * A conv layer's bias while training, in WebAssembly SIMD, run in
 * tfjs-backend-wasm's own memory on this thread (no copies): `biasAdd` (the
 * forward `Add` of a bias along the last axis) and `columnSums` (its
 * gradient, `Sum` over the leading axes). Both compute what the cpu backend
 * does, bit for bit: each sum of the add is one float32 addition (JS adds in
 * float64 and rounds, the same value), and each column sums its rows in
 * row order in float64, rounded to float32 once. Against the JS loops they
 * replace (bias_add.ts, sum.ts), a step of the MNIST CNN (one thread, CPU
 * time, bench/profile_cnn.ts `CNN_SWITCH=inPlaceBiases`, this switch alone,
 * a loaded machine): `Add` 1.98 → 1.10 ms and `Sum` 1.83 → 0.72 on Deno; on
 * Bun `Add` 1.26 → 1.08, `Sum` 1.60 → 0.67 (bench/README.md's table is
 * another run, of the three in-heap switches together).
 *
 * @module
 */
import { type Code, doWhile, Func, type FunctionDef, I32, op, V128 } from "./assemble.ts";
import { inHeap } from "./in_heap.ts";

/**
 * `biasAdd(x, bias, out, rows, rowBytes)`: `out[r, j] = x[r, j] + bias[j]`
 * for `rows` rows of `rowBytes` bytes (a multiple of 16), four lanes at a
 * time; with `relu`, each sum then as the cpu backend's relu leaves it: 0
 * where it is ≤ 0 (−0 too), NaN kept. `x` may be `out`.
 */
export function biasAddFunction(relu = false): FunctionDef {
  const f = new Func("biasAdd");
  const [x, bias, out, rows, rowBytes] = f.params("x", "bias", "out", "rows", "rowBytes");
  const [j] = f.locals(I32, "j");
  const { get, set, tee, increment } = f;
  const { i32, add } = op;
  // relu(v) = v & ~(v <= 0): the comparison is false for NaN, true for −0.
  const sum = relu ? f.locals(V128, "sum")[0] : undefined;
  const activation: Code = sum ? [...tee(sum), ...get(sum), ...op.v128Zero, ...op.f32x4Le, ...op.v128Andnot] : [];
  return f.build([
    ...doWhile([
      ...i32(0),
      ...set(j),
      ...doWhile([
        ...get(out),
        ...get(j),
        ...add,
        ...get(x),
        ...get(j),
        ...add,
        ...op.v128Load(),
        ...get(bias),
        ...get(j),
        ...add,
        ...op.v128Load(),
        ...op.f32x4Add,
        ...activation,
        ...op.v128Store(),
        ...increment(j, i32(16)),
      ], [...get(j), ...get(rowBytes), ...op.ne]),
      ...increment(x, get(rowBytes)),
      ...increment(out, get(rowBytes)),
      ...get(rows),
      ...i32(1),
      ...op.sub,
      ...set(rows),
      ...get(rows),
    ], []),
  ]);
}

/** The widest rows {@link columnSumsFunction} is made for (its sums live in locals, two columns each). */
export const MAX_SUM_WIDTH = 64;

/**
 * `columnSums(x, rows, out)` for rows of `width` float32 values (even, at most
 * {@link MAX_SUM_WIDTH}): each column's sum over the `rows` rows, in row
 * order in float64, stored to `out` as float32 (`width` values).
 */
export function columnSumsFunction(width: number): FunctionDef {
  if (width % 2 !== 0 || width <= 0 || width > MAX_SUM_WIDTH) {
    throw new RangeError(`columnSumsFunction: width must be even, 2 to ${MAX_SUM_WIDTH}, got ${width}`);
  }
  const f = new Func("columnSums");
  const [x, rows, out] = f.params("x", "rows", "out");
  const pairs = width / 2;
  const sums = f.locals(V128, ...Array.from({ length: pairs }, (_, k) => `sum${k}`));
  const { get, set, increment } = f;
  const { i32 } = op;
  const row: Code = [];
  for (let k = 0; k < pairs; k++) {
    row.push(...get(sums[k]), ...get(x), ...op.load64Zero(8 * k), ...op.promoteLow, ...op.f64x2Add, ...set(sums[k]));
  }
  const store: Code = [];
  for (let k = 0; k < pairs; k++) {
    store.push(...get(out), ...get(sums[k]), ...op.demoteZero, ...op.store64Lane(0, 8 * k));
  }
  return f.build([
    ...sums.flatMap((s) => [...op.v128Zero, ...set(s)]),
    ...doWhile([
      ...row,
      ...increment(x, i32(width * 4)),
      ...get(rows),
      ...i32(1),
      ...op.sub,
      ...set(rows),
      ...get(rows),
    ], []),
    ...store,
  ]);
}

/** `biasAdd`'s signature (byte addresses in the memory it was made with). */
export type BiasAdd = (x: number, bias: number, out: number, rows: number, rowBytes: number) => void;
/** `columnSums`'s signature. */
export type ColumnSums = (x: number, rows: number, out: number) => void;

/** `biasAdd` (with `relu`, its relu variant) working in `memory` (an unshared memory: tfjs-backend-wasm's heap), made once per memory. */
export function biasAddIn(memory: WebAssembly.Memory, relu = false): BiasAdd {
  return inHeap<BiasAdd>(memory, relu ? "biasAdd relu" : "biasAdd", () => biasAddFunction(relu));
}

/** `columnSums` for rows of `width` values working in `memory`, made once per memory and width. */
export function columnSumsIn(memory: WebAssembly.Memory, width: number): ColumnSums {
  return inHeap<ColumnSums>(memory, `columnSums ${width}`, () => columnSumsFunction(width));
}
