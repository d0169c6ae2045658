/**
 * `pool2x2`, a 2 × 2 max pool with stride 2 in WebAssembly SIMD, four
 * channels at a time, run in tfjs-backend-wasm's own memory (no copies): each
 * output lane starts at −∞ and takes an input only where it is strictly
 * greater, in row, column order — the cpu backend's rule (a NaN never wins; a
 * window of NaN and −∞ gives −∞; of −0 then +0, −0). The MNIST CNN's first
 * pool (512 × 24 × 24 × 8) took ~0.4 ms against XNNPACK's ~0.96 (Deno, one
 * thread); the same loop over any window size, with loops for rows and
 * columns, took ~0.8.
 *
 * @module
 */
import { type Code, doWhile, Func, type FunctionDef, I32, op, V128 } from "./assemble.ts";
import { inHeap } from "./in_heap.ts";

/**
 * The loops of a 2 × 2, stride-2 pool's kernels (`pool2x2` here and
 * `pool2x2Grad` in max_pool_grad.ts), over the parameters `windows`, `cols`,
 * `groups`, `rowStep` and the locals `col`, `g`, `pending`, `colBytes` of
 * `f`: `group` runs once for each group of four channels of each window, `g`
 * the group's byte offset and `pending` the window's (from the first
 * input); windows go along a row two inputs at a time, then on to the next
 * row of windows `rowStep` bytes on.
 */
export function windowLoops(f: Func, group: Code): Code {
  const [windows, cols, groups, rowStep] = ["windows", "cols", "groups", "rowStep"].map((n) => f.named(n));
  const [col, g, pending, colBytes] = ["col", "g", "pending", "colBytes"].map((n) => f.named(n));
  const { get, set, tee, increment } = f;
  const { i32, add } = op;
  return [
    ...get(groups),
    ...i32(16),
    ...op.mul,
    ...set(colBytes),
    ...i32(0),
    ...set(pending),
    ...get(cols),
    ...set(col),
    ...doWhile([
      ...i32(0),
      ...set(g),
      ...doWhile(group, [...get(g), ...get(colBytes), ...op.ne]),
      // Next window: one on (two inputs' width), or at a row's end the next row's first.
      ...get(col),
      ...i32(1),
      ...op.sub,
      ...tee(col),
      ...op.if,
      ...increment(pending, [...get(colBytes), ...get(colBytes), ...add]),
      ...op.else,
      ...get(cols),
      ...set(col),
      ...get(pending),
      ...get(colBytes),
      ...get(colBytes),
      ...add,
      ...get(cols),
      ...i32(1),
      ...op.sub,
      ...op.mul,
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
  ];
}

/**
 * `pool2x2(x, out, windows, cols, groups, rowStep, inRow)`: for `windows`
 * windows (`cols` to a row; `rowStep` bytes from one row of windows to the
 * next, `inRow` bytes between input rows) of `groups` groups of four
 * channels, writes each window's maximum to `out`, one after another.
 */
export function pool2x2Function(): FunctionDef {
  const f = new Func("pool2x2");
  // (`windows`, `cols`, `groups` and `rowStep` are read by windowLoops, as are the locals `col`, `g`, `pending`.)
  const [x, out, , , , , inRow] = f.params(
    "x",
    "out",
    "windows",
    "cols",
    "groups",
    "rowStep",
    "inRow",
  );
  const [, g, at, pending, colBytes] = f.locals(I32, "col", "g", "at", "pending", "colBytes");
  const [best] = f.locals(V128, "best");
  const { get, set, increment } = f;
  const { i32, add } = op;
  // One input of the window: where it is greater than the best so far, the best.
  // (`pmax(best, v)` is `best < v ? v : best`: one instruction; the comparison and bit select it replaced took
  // ~20% longer on the MNIST CNN's first pool alone, Deno and Bun.)
  const take = (offset: Code): Code => [
    ...get(best),
    ...get(at),
    ...offset,
    ...add,
    ...op.v128Load(),
    ...op.f32x4Pmax,
    ...set(best),
  ];
  const group: Code = [
    ...get(x),
    ...get(pending),
    ...add,
    ...get(g),
    ...add,
    ...set(at),
    ...op.f32(-Infinity),
    ...op.f32x4Splat,
    ...set(best),
    ...take(i32(0)),
    ...take(get(colBytes)),
    ...take(get(inRow)),
    ...take([...get(inRow), ...get(colBytes), ...add]),
    ...get(out),
    ...get(best),
    ...op.v128Store(),
    ...increment(out, i32(16)),
    ...increment(g, i32(16)),
  ];
  return f.build(windowLoops(f, group));
}

/** `pool2x2`'s signature (byte addresses in the memory it was made with). */
export type Pool2x2 = (
  x: number,
  out: number,
  windows: number,
  cols: number,
  groups: number,
  rowStep: number,
  inRow: number,
) => void;

/** `pool2x2` working in `memory` (an unshared memory: tfjs-backend-wasm's heap), made once per memory. */
export function pool2x2In(memory: WebAssembly.Memory): Pool2x2 {
  return inHeap<Pool2x2>(memory, "pool2x2", pool2x2Function);
}
