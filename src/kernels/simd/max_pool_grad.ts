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
