/**
 * `poolGrad`, max pooling's gradient in WebAssembly SIMD for windows that do
 * not overlap, four channels at a time: each window's gradient goes to its
 * first largest input in row, column order (a strict `>` from −∞: a NaN
 * never wins, a window of −∞ and NaN gets none), every other input of the
 * window gets +0 — the cpu backend's rule and values. Branch-free: the
 * MNIST CNN's two pool gradients take ~3.7 ms of CPU a step, copies in and
 * out included, against ~48 for the float64 JS loop and about a third of
 * that for the tight one (max_pool_grad.ts).
 *
 * @module
 */
import { type Code, doWhile, Func, type FunctionDef, I32, op, V128 } from "./assemble.ts";
import { inHeap } from "./in_heap.ts";
import { windowLoops } from "./max_pool.ts";

/**
 * `poolGrad(x, dy, out, windows, cols, fh, fw, groups, colStep, rowStep, inRow)`:
 * for `windows` windows (`cols` to a row; a window's first input at `x`,
 * moving `colStep` bytes a window and `rowStep` from one row of windows to
 * the next; `inRow` bytes between input rows) of `fh` × `fw` inputs, and
 * `groups` groups of four channels, writes the gradient of each input of the
 * window into `out` (laid out as `x`, the same offsets) from `dy` (the
 * windows' gradients, `groups` · 16 bytes a window).
 */
export function poolGradFunction(): FunctionDef {
  const f = new Func("poolGrad");
  const [x, dy, out, windows, cols, fh, fw, groups, colStep, rowStep, inRow] = f.params(
    "x",
    "dy",
    "out",
    "windows",
    "cols",
    "fh",
    "fw",
    "groups",
    "colStep",
    "rowStep",
    "inRow",
  );
  const [col, g, at, r, c, k, rowAt, pending] = f.locals(I32, "col", "g", "at", "r", "c", "k", "rowAt", "pending");
  const [best, sel, v, grad, index, zero] = f.locals(V128, "best", "sel", "v", "grad", "index", "zero");
  const { get, set, tee, increment } = f;
  const { i32, add, mul } = op;
  // For each input of the window (r, c: its byte offsets), in row, column order, `body` with its address in `at`
  // and its place in the window in `k`.
  const eachInput = (body: Code): Code => [
    ...i32(0),
    ...set(k),
    ...i32(0),
    ...set(r),
    ...doWhile([
      ...i32(0),
      ...set(c),
      ...doWhile([
        ...get(rowAt),
        ...get(r),
        ...add,
        ...get(c),
        ...add,
        ...set(at),
        ...body,
        ...increment(k, i32(1)),
        ...increment(c, [...get(groups), ...i32(16), ...mul]),
        ...get(c),
        ...get(fw),
        ...get(groups),
        ...i32(16),
        ...mul,
        ...mul,
        ...op.ne,
      ], []),
      ...increment(r, get(inRow)),
      ...get(r),
      ...get(fh),
      ...get(inRow),
      ...mul,
      ...op.ne,
    ], []),
  ];
  const group: Code = [
    // rowAt: this group's lanes of the window's first input (an offset from x and out alike).
    ...get(pending),
    ...get(g),
    ...add,
    ...set(rowAt),
    ...op.f32(-Infinity),
    ...op.f32x4Splat,
    ...set(best),
    ...i32(-1),
    ...op.i32x4Splat,
    ...set(sel),
    ...eachInput([
      ...get(x),
      ...get(at),
      ...add,
      ...op.v128Load(),
      ...tee(v),
      ...get(best),
      ...op.f32x4Gt,
      ...set(index), // the lanes where this input is the new maximum
      ...get(k),
      ...op.i32x4Splat,
      ...get(sel),
      ...get(index),
      ...op.v128Bitselect,
      ...set(sel),
      ...get(v),
      ...get(best),
      ...get(index),
      ...op.v128Bitselect,
      ...set(best),
    ]),
    ...get(dy),
    ...op.v128Load(),
    ...get(zero),
    ...op.f32x4Add, // −0 + 0 = +0, as the cpu backend's sum from 0 gives
    ...set(grad),
    ...eachInput([
      ...get(out),
      ...get(at),
      ...add,
      ...get(grad),
      ...get(zero),
      ...get(k),
      ...op.i32x4Splat,
      ...get(sel),
      ...op.i32x4Eq,
      ...op.v128Bitselect,
      ...op.v128Store(),
    ]),
    ...increment(dy, i32(16)),
    ...increment(g, i32(16)),
  ];
  return f.build([
    ...op.v128Zero,
    ...set(zero),
    ...i32(0),
    ...set(pending),
    ...get(cols),
    ...set(col),
    ...doWhile([
      ...i32(0),
      ...set(g),
      ...doWhile(group, [...get(g), ...get(groups), ...i32(16), ...mul, ...op.ne]),
      // Next window: one on, or at a row's end the next row's first.
      ...get(col),
      ...i32(1),
      ...op.sub,
      ...tee(col),
      ...op.if,
      ...increment(pending, get(colStep)),
      ...op.else,
      ...get(cols),
      ...set(col),
      ...get(pending),
      ...get(colStep),
      ...get(cols),
      ...i32(1),
      ...op.sub,
      ...mul,
      ...op.sub,
      ...get(rowStep),
      ...add,
      ...set(pending),
      ...op.end,
      ...get(windows),
      ...i32(1),
      ...op.sub,
      ...tee(windows),
    ], []),
  ]);
}

/** `poolGrad`'s signature (byte addresses in the memory it was made with). */
export type PoolGrad = (
  x: number,
  dy: number,
  out: number,
  windows: number,
  cols: number,
  fh: number,
  fw: number,
  groups: number,
  colStep: number,
  rowStep: number,
  inRow: number,
) => void;

/** `poolGrad` working in `memory` (an unshared memory: tfjs-backend-wasm's heap), made once per memory. */
export function poolGradIn(memory: WebAssembly.Memory): PoolGrad {
  return inHeap<PoolGrad>(memory, "poolGrad", poolGradFunction);
}

/**
 * `pool2x2Grad(x, dy, out, windows, cols, groups, rowStep, inRow)`: `poolGrad`
 * for 2 × 2 windows at stride 2, unrolled, the same values: each window's four
 * inputs (row, column order) are compared from −∞ with a strict `>`; the last
 * input that was greater than all before it is the first maximum and takes
 * `dy + 0` (−0 made +0), the others +0. Windows and rows of windows as
 * pool2x2 (simd/max_pool.ts) takes them. The generic loop took ~3.1 ms of CPU
 * a step for the MNIST CNN's two pool gradients in tfjs's heap (Deno).
 */
export function pool2x2GradFunction(): FunctionDef {
  const f = new Func("pool2x2Grad");
  // (`windows`, `cols`, `groups` and `rowStep` are read by windowLoops, as are the locals `col`, `g`, `pending`.)
  const [x, dy, out, , , , , inRow] = f.params(
    "x",
    "dy",
    "out",
    "windows",
    "cols",
    "groups",
    "rowStep",
    "inRow",
  );
  const [, g, at, pending, colBytes] = f.locals(I32, "col", "g", "at", "pending", "colBytes");
  const [best, v, rest, zero] = f.locals(V128, "best", "v", "rest", "zero");
  const masks = f.locals(V128, "m0", "m1", "m2", "m3");
  const { get, set, tee, increment } = f;
  const { i32, add } = op;
  const place = (k: number): Code => [[], get(colBytes), get(inRow), [...get(inRow), ...get(colBytes), ...add]][k];
  // Input k: where it is greater than the best so far, the best; its mask kept.
  const take = (k: number): Code => [
    ...get(x),
    ...get(at),
    ...add,
    ...place(k),
    ...(k ? add : []),
    ...op.v128Load(),
    ...tee(v),
    ...get(best),
    ...op.f32x4Gt,
    ...set(masks[k]),
    ...get(best),
    ...get(v),
    ...op.f32x4Pmax, // best < v ? v : best
    ...set(best),
  ];
  // Input k's gradient: what is left of the window's where its mask is set; then what is left is cleared there.
  const give = (k: number): Code => [
    ...get(out),
    ...get(at),
    ...add,
    ...place(k),
    ...(k ? add : []),
    ...get(rest),
    ...get(masks[k]),
    ...op.v128And,
    ...op.v128Store(),
    ...(k ? [...get(rest), ...get(masks[k]), ...op.v128Andnot, ...set(rest)] : []),
  ];
  const group: Code = [
    ...get(pending),
    ...get(g),
    ...add,
    ...set(at),
    ...op.f32(-Infinity),
    ...op.f32x4Splat,
    ...set(best),
    ...take(0),
    ...take(1),
    ...take(2),
    ...take(3),
    ...get(dy),
    ...op.v128Load(),
    ...get(zero),
    ...op.f32x4Add, // −0 + 0 = +0, as the cpu backend's sum from 0 gives
    ...set(rest),
    ...give(3),
    ...give(2),
    ...give(1),
    ...give(0),
    ...increment(dy, i32(16)),
    ...increment(g, i32(16)),
  ];
  return f.build([
    ...op.v128Zero,
    ...set(zero),
    ...windowLoops(f, group),
  ]);
}

/** `pool2x2Grad`'s signature (byte addresses in the memory it was made with). */
export type Pool2x2Grad = (
  x: number,
  dy: number,
  out: number,
  windows: number,
  cols: number,
  groups: number,
  rowStep: number,
  inRow: number,
) => void;

/** `pool2x2Grad` working in `memory` (an unshared memory: tfjs-backend-wasm's heap), made once per memory. */
export function pool2x2GradIn(memory: WebAssembly.Memory): Pool2x2Grad {
  return inHeap<Pool2x2Grad>(memory, "pool2x2Grad", pool2x2GradFunction);
}
