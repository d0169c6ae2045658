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
import { type Code, doWhile, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";

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
  const f = new Func("taps");
  const [x, dy, count, cols, colStep, rowStep, stride, offsets, taps, acc] = f.params(
    "x",
    "dy",
    "count",
    "cols",
    "colStep",
    "rowStep",
    "stride",
    "offsets",
    "taps",
    "acc",
  );
  const [g, t, px, row, col, n, pd, accRow] = f.locals(I32, "g", "t", "px", "row", "col", "n", "pd", "accRow");
  // Tap p's offset, and its accumulators: output channels 4h to 4h + 3 of this group.
  const offs = f.locals(I32, ...Array.from({ length: TAP_BLOCK }, (_, p) => `off${p}`));
  const accs = f.locals(V128, ...Array.from({ length: 2 * TAP_BLOCK }, (_, i) => `a${i >> 1}_${i & 1}`));
  const off = (p: number) => offs[p];
  const a = (p: number, h: number) => accs[p * 2 + h];
  const [d0, d1, s] = f.locals(V128, "d0", "d1", "s");
  const { get, set, tee, increment } = f;
  const { i32, add, sub, mul } = op;
  const madd = (target: Local, d: Local): Code =>
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
  head.push(...get(x), ...tee(px), ...set(row), ...get(cols), ...set(col), ...get(count), ...set(n));
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
    ...tee(col),
    ...op.if,
    ...increment(px, get(colStep)),
    ...op.else,
    ...get(cols),
    ...set(col),
    ...get(row),
    ...get(rowStep),
    ...add,
    ...tee(row),
    ...set(px),
    ...op.end,
    ...get(n),
    ...i32(1),
    ...sub,
    ...tee(n),
  );
  const tail: Code = [];
  for (let p = 0; p < TAP_BLOCK; p++) {
    for (let h = 0; h < 2; h++) tail.push(...accAt(p), ...get(a(p, h)), ...op.v128Store(h * 16));
  }
  return f.build([
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
  ]);
}
