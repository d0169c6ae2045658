/**
 * `convolve`, a 2-d convolution's kernel in WebAssembly SIMD, for the
 * forward pass and the input gradient (a convolution of the padded output
 * gradient with the flipped filter): six output positions by eight output
 * channels at a time in twelve 4-lane registers, as the products' panels,
 * reading each position's taps straight from the (padded) input through a
 * table of offsets — no patches matrix. Of CPU a step of the MNIST CNN on
 * one thread: the forward convolutions 12.7 ms on tfjs-backend-wasm's
 * XNNPACK, 8.6 here; the input gradient 30.8 as a product of patches
 * scattered back in JS, 8.0 here.
 *
 * @module
 */
import { type Code, doWhile, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";

/** Output positions computed at once. */
export const POSITION_BLOCK = 6;

/**
 * `convolve(x, positions, count, offsets, taps, w, out, stride, ranges)`:
 * for each of `count` output positions (a multiple of
 * {@link POSITION_BLOCK}; position `p`'s input at `x + positions[p]`) and
 * each output channel, `Σ over taps t of x[position + offsets[t]] · w[t,
 * channel]` into row `p` of `out` (`stride` bytes a row: the output channels
 * padded to a multiple of 8), over the taps from `ranges[2·block]` to
 * `ranges[2·block + 1]` only (`taps` in all; the caller leaves out taps that
 * read only zeros). `positions` and `offsets` are byte offsets (i32); `w` is
 * packed in groups of 8 channels, `[group][tap][8]`. Each sum adds its terms
 * in tap order, in float32, from zero.
 */
export function convolveFunction(fused: boolean): FunctionDef {
  const f = new Func("convolve");
  const [x, positions, count, offsets, taps, w, out, stride, ranges] = f.params(
    "x",
    "positions",
    "count",
    "offsets",
    "taps",
    "w",
    "out",
    "stride",
    "ranges",
  );
  const [g, wg, pb, pw, po, end, o, row, range] = f.locals(
    I32,
    "g",
    "wg",
    "pb",
    "pw",
    "po",
    "end",
    "o",
    "row",
    "range",
  );
  // Position k's input (bases), and its accumulators: output channels 4h to 4h + 3 of this group.
  const bases = f.locals(I32, ...Array.from({ length: POSITION_BLOCK }, (_, k) => `base${k}`));
  const accs = f.locals(V128, ...Array.from({ length: 2 * POSITION_BLOCK }, (_, i) => `acc${i >> 1}_${i & 1}`));
  const base = (k: number) => bases[k];
  const acc = (k: number, h: number) => accs[k * 2 + h];
  const [w0, w1, s] = f.locals(V128, "w0", "w1", "s");
  const { get, set, increment } = f;
  const { i32, add, mul } = op;
  const madd = (target: Local, v: Local): Code =>
    fused
      ? [...get(s), ...get(v), ...get(target), ...op.f32x4RelaxedMadd, ...set(target)]
      : [...get(s), ...get(v), ...op.f32x4Mul, ...get(target), ...op.f32x4Add, ...set(target)];
  const head: Code = [];
  for (let k = 0; k < POSITION_BLOCK; k++) {
    head.push(...get(positions), ...get(pb), ...i32(4), ...mul, ...add, ...op.i32Load(k * 4));
    head.push(...get(x), ...add, ...set(base(k)), ...op.v128Zero, ...set(acc(k, 0)), ...op.v128Zero);
    head.push(...set(acc(k, 1)));
  }
  // This block's taps (`range` points at its pair): pw and po start at the first, `end` after the last.
  head.push(...get(wg), ...get(range), ...op.i32Load(), ...i32(32), ...mul, ...add, ...set(pw));
  head.push(...get(offsets), ...get(range), ...op.i32Load(), ...i32(4), ...mul, ...add, ...set(po));
  head.push(...get(offsets), ...get(range), ...op.i32Load(4), ...i32(4), ...mul, ...add, ...set(end));
  const tap: Code = [
    ...get(po),
    ...op.i32Load(),
    ...set(o),
    ...get(pw),
    ...op.v128Load(),
    ...set(w0),
    ...get(pw),
    ...op.v128Load(16),
    ...set(w1),
  ];
  for (let k = 0; k < POSITION_BLOCK; k++) {
    // The address is added, not given as the load's offset (JavaScriptCore broadcasts from memory only without one).
    tap.push(...get(base(k)), ...get(o), ...add, ...op.load32Splat(0), ...set(s));
    tap.push(...madd(acc(k, 0), w0), ...madd(acc(k, 1), w1));
  }
  tap.push(...increment(pw, i32(32)), ...increment(po, i32(4)), ...get(po), ...get(end), ...op.ne);
  const tail: Code = [];
  for (let k = 0; k < POSITION_BLOCK; k++) {
    // out + (pb + k)·stride + g
    tail.push(...get(out), ...get(pb), ...i32(k), ...add, ...get(stride), ...mul, ...add, ...get(g), ...add);
    tail.push(...set(row));
    for (let h = 0; h < 2; h++) tail.push(...get(row), ...get(acc(k, h)), ...op.v128Store(h * 16));
  }
  return f.build([
    ...i32(0),
    ...set(g),
    ...doWhile([
      // This group's weights: w + (g / 32)·taps·32 = w + g·taps.
      ...get(w),
      ...get(g),
      ...get(taps),
      ...mul,
      ...add,
      ...set(wg),
      ...i32(0),
      ...set(pb),
      ...get(ranges),
      ...set(range),
      ...doWhile([
        ...head,
        ...doWhile(tap, []),
        ...tail,
        ...increment(pb, i32(POSITION_BLOCK)),
        ...increment(range, i32(8)),
      ], [...get(pb), ...get(count), ...op.ne]),
      ...increment(g, i32(32)),
    ], [...get(g), ...get(stride), ...op.ne]),
  ]);
}
