/**
 * `taps`, the convolution filter gradient's kernel in WebAssembly SIMD: for
 * one sample, every filter tap's sum over the output positions of input ×
 * output gradient, read straight from the (padded) input and the output
 * gradient — no patches matrix. As a product of patches the MNIST CNN's two
 * filter gradients at batch 512 took ~70 ms of CPU a step on one thread here
 * (a 29.5 MB patches matrix written, zeroed and packed; the output gradient
 * packed again for every panel of taps), this way ~10.
 *
 * @module
 */
import { type Code, doWhile, type FunctionDef, I32, increment, op, V128 } from "./assemble.ts";

/** Taps accumulated at once: 6 × 8 output channels in twelve 4-lane registers, as the products' panels. */
export const TAP_BLOCK = 6;

/**
 * `taps(x, dy, count, cols, colStep, rowStep, stride, offsets, taps, acc)`:
 * adds, for each tap `t` (`taps`, a multiple of {@link TAP_BLOCK}) and each
 * output channel, Σ over `count` output positions of `x[pos + offsets[t]] ·
 * dy[pos, channel]` into `acc[t]` (float32, `stride` bytes a row).
 * Positions run in row-major order, `cols` to a row: the input pointer moves
 * `colStep` bytes a column and `rowStep` from one row's start to the next;
 * the output gradient's rows of channels are `stride` bytes apart (channels
 * padded to a multiple of 8). `offsets` are byte offsets (i32). Each sum adds
 * its terms in position order, in float32 (one rounding per term, or two
 * where the engine splits the multiply-add).
 */
export function tapsFunction(fused: boolean): FunctionDef {
  const [x, dy, count, cols, colStep, rowStep, stride, offsets, taps, acc] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [g, t, px, row, col, n, pd, accRow] = [10, 11, 12, 13, 14, 15, 16, 17];
  const off = (p: number) => 18 + p;
  const a = (p: number, h: number) => 18 + TAP_BLOCK + p * 2 + h;
  const [d0, d1, s] = [18 + 3 * TAP_BLOCK, 19 + 3 * TAP_BLOCK, 20 + 3 * TAP_BLOCK];
  const { get, set, i32, add, sub, mul } = op;
  const madd = (target: number, d: number): Code =>
    fused
      ? [...get(s), ...get(d), ...get(target), ...op.f32x4RelaxedMadd, ...set(target)]
      : [...get(s), ...get(d), ...op.f32x4Mul, ...get(target), ...op.f32x4Add, ...set(target)];
  // acc + (t + p)·stride + g: tap p's accumulator row, this group of 8 channels.
  const accAt = (p: number): Code => [...get(accRow), ...(p ? [...get(stride), ...i32(p), ...mul, ...add] : [])];
  const head: Code = [
    ...get(acc),
    ...get(t),
    ...get(stride),
    ...mul,
    ...add,
    ...get(g),
    ...add,
    ...set(accRow),
  ];
  for (let p = 0; p < TAP_BLOCK; p++) {
    head.push(...get(offsets), ...get(t), ...i32(4), ...mul, ...add, ...op.i32Load(p * 4), ...set(off(p)));
    for (let h = 0; h < 2; h++) head.push(...accAt(p), ...op.v128Load(h * 16), ...set(a(p, h)));
  }
  head.push(...get(x), ...op.tee(px), ...set(row), ...get(cols), ...set(col), ...get(count), ...set(n));
  head.push(...get(dy), ...get(g), ...add, ...set(pd));
  const position: Code = [...get(pd), ...op.v128Load(), ...set(d0), ...get(pd), ...op.v128Load(16), ...set(d1)];
  for (let p = 0; p < TAP_BLOCK; p++) {
    // The address is added, not given as the load's offset (JavaScriptCore broadcasts from memory only without one).
    position.push(...get(px), ...get(off(p)), ...add, ...op.load32Splat(0), ...set(s));
    position.push(...madd(a(p, 0), d0), ...madd(a(p, 1), d1));
  }
  position.push(
    ...increment(pd, get(stride)),
    // col -= 1; at a row's end the pointer goes to the next row's start, else one column on.
    ...get(col),
    ...i32(1),
    ...sub,
    ...op.tee(col),
    ...op.if,
    ...increment(px, get(colStep)),
    ...op.else,
    ...get(cols),
    ...set(col),
    ...get(row),
    ...get(rowStep),
    ...add,
    ...op.tee(row),
    ...set(px),
    ...op.end,
    ...get(n),
    ...i32(1),
    ...sub,
    ...op.tee(n),
  );
  const tail: Code = [];
  for (let p = 0; p < TAP_BLOCK; p++) {
    for (let h = 0; h < 2; h++) tail.push(...accAt(p), ...get(a(p, h)), ...op.v128Store(h * 16));
  }
  return {
    name: "taps",
    params: 10,
    locals: [...new Array(8 + TAP_BLOCK).fill(I32), ...new Array(2 * TAP_BLOCK + 3).fill(V128)],
    body: [
      ...i32(0),
      ...set(g),
      ...doWhile([
        ...i32(0),
        ...set(t),
        ...doWhile([
          ...head,
          ...doWhile(position, []),
          ...tail,
          ...increment(t, i32(TAP_BLOCK)),
        ], [...get(t), ...get(taps), ...op.ne]),
        ...increment(g, i32(32)),
      ], [...get(g), ...get(stride), ...op.ne]),
    ],
  };
}
