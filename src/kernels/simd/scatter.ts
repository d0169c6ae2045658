/**
 * `scatter`, a 2-d convolution's input gradient in WebAssembly SIMD for
 * 'valid' convolutions at stride 1: every output gradient position adds its
 * channels times each filter tap's weights into the input positions that tap
 * reached — no padded copy of the output gradient, and only the products that
 * exist. The input gradient as a convolution of the padded output gradient
 * (convolve.ts) also multiplies the zeros around it: for the MNIST CNN's
 * second layer (8 × 8 outputs, 5 × 5 filter) a third of its multiply-adds,
 * with the 8.4 MB padded copy zeroed and written on the training thread.
 *
 * @module
 */
import { type Code, doWhile, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";

/** Output gradient positions taken at once. */
export const SCATTER_BLOCK = 6;

/**
 * `scatter(dy, dx, dyPos, dxPos, count, tapOffs, taps, depth, w, groups)`:
 * for each group of 8 input channels (`groups` of them), each tap `t` in
 * order and each of `count` positions (a multiple of {@link SCATTER_BLOCK};
 * position `p`'s output gradient at `dy + dyPos[p]`, its input at `dx +
 * dxPos[p]`), adds `Σ over the depth's channels o of dy[p, o] · w[t, o]` (the
 * group's 8 lanes; the sum in float32 from the value there, in channel order)
 * into the input at `dx + dxPos[p] + tapOffs[t]`. `dyPos`, `dxPos` and
 * `tapOffs` are byte offsets (i32); `w` is packed `[group][tap][o][8]`.
 */
export function scatterFunction(fused: boolean): FunctionDef {
  const f = new Func("scatter");
  const [dy, dx, dyPos, dxPos, count, tapOffs, taps, depth, w, groups] = f.params(
    "dy",
    "dx",
    "dyPos",
    "dxPos",
    "count",
    "tapOffs",
    "taps",
    "depth",
    "w",
    "groups",
  );
  const [g, gEnd, t, wt, pb, pw, po, end, off, at] = f.locals(
    I32,
    "g",
    "gEnd",
    "t",
    "wt",
    "pb",
    "pw",
    "po",
    "end",
    "off",
    "at",
  );
  const bases = f.locals(I32, ...Array.from({ length: SCATTER_BLOCK }, (_, k) => `base${k}`));
  const accs = f.locals(V128, ...Array.from({ length: 2 * SCATTER_BLOCK }, (_, i) => `acc${i >> 1}_${i & 1}`));
  const acc = (k: number, h: number) => accs[k * 2 + h];
  const [w0, w1, s] = f.locals(V128, "w0", "w1", "s");
  const { get, set, increment } = f;
  const { i32, add, mul } = op;
  const madd = (target: Local, v: Local): Code =>
    fused
      ? [...get(s), ...get(v), ...get(target), ...op.f32x4RelaxedMadd, ...set(target)]
      : [...get(s), ...get(v), ...op.f32x4Mul, ...get(target), ...op.f32x4Add, ...set(target)];
  // Where position pb + k's input for this tap and group is: dx + dxPos[pb + k] + off + g.
  const inputAt = (k: number): Code => [
    ...get(dxPos),
    ...get(pb),
    ...i32(4),
    ...mul,
    ...add,
    ...op.i32Load(k * 4),
    ...get(dx),
    ...add,
    ...get(off),
    ...add,
    ...get(g),
    ...add,
  ];
  const head: Code = [];
  for (let k = 0; k < SCATTER_BLOCK; k++) {
    head.push(...get(dyPos), ...get(pb), ...i32(4), ...mul, ...add, ...op.i32Load(k * 4));
    head.push(...get(dy), ...add, ...set(bases[k]));
    head.push(...inputAt(k), ...set(at));
    head.push(...get(at), ...op.v128Load(), ...set(acc(k, 0)), ...get(at), ...op.v128Load(16), ...set(acc(k, 1)));
  }
  head.push(...get(wt), ...set(pw), ...i32(0), ...set(po));
  const channel: Code = [...get(pw), ...op.v128Load(), ...set(w0), ...get(pw), ...op.v128Load(16), ...set(w1)];
  for (let k = 0; k < SCATTER_BLOCK; k++) {
    // The address is added, not given as the load's offset (JavaScriptCore broadcasts from memory only without one).
    channel.push(...get(bases[k]), ...get(po), ...add, ...op.load32Splat(0), ...set(s));
    channel.push(...madd(acc(k, 0), w0), ...madd(acc(k, 1), w1));
  }
  channel.push(...increment(pw, i32(32)), ...increment(po, i32(4)), ...get(po), ...get(end), ...op.ne);
  const tail: Code = [];
  for (let k = 0; k < SCATTER_BLOCK; k++) {
    tail.push(...inputAt(k), ...set(at));
    tail.push(...get(at), ...get(acc(k, 0)), ...op.v128Store(), ...get(at), ...get(acc(k, 1)), ...op.v128Store(16));
  }
  return f.build([
    ...get(depth),
    ...i32(4),
    ...mul,
    ...set(end),
    ...get(groups),
    ...i32(32),
    ...mul,
    ...set(gEnd),
    ...i32(0),
    ...set(g),
    ...doWhile([
      // This group's weights start at w + g·taps·depth (g counts 32 bytes a group: 8 floats of each tap and channel).
      ...get(w),
      ...get(g),
      ...get(taps),
      ...mul,
      ...get(depth),
      ...mul,
      ...add,
      ...set(wt),
      ...i32(0),
      ...set(t),
      ...doWhile([
        ...get(tapOffs),
        ...get(t),
        ...i32(4),
        ...mul,
        ...add,
        ...op.i32Load(),
        ...set(off),
        ...i32(0),
        ...set(pb),
        ...doWhile([
          ...head,
          ...doWhile(channel, []),
          ...tail,
          ...increment(pb, i32(SCATTER_BLOCK)),
          ...get(pb),
          ...get(count),
          ...op.ne,
        ], []),
        ...increment(wt, [...get(depth), ...i32(32), ...mul]),
        ...increment(t, i32(1)),
        ...get(t),
        ...get(taps),
        ...op.ne,
      ], []),
      ...increment(g, i32(32)),
      ...get(g),
      ...get(gEnd),
      ...op.ne,
    ], []),
  ]);
}
