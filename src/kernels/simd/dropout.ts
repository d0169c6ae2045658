/**
 * The host engine's Dropout in training (src/engine/layers/dropout.ts) in
 * WebAssembly: the uniform draws `tf.randomUniform` makes (Alea's
 * multiply-with-carry steps, as `uniform_draws.ts` computes them), each
 * rounded to float32, the keep decision against the kind's exact threshold,
 * the mask and the masked output, in one pass. Every operation is the JS
 * loops' float64 operation in their order (Alea's are exact; the threshold a
 * comparison; the output one product), so the draws, masks and outputs are
 * bit for bit theirs (tests/dropout_kernel_test.ts).
 *
 * The draws are one chain (each step needs the carry of the one before), so
 * the pass runs on one thread. The draws alone take ~1.2 ns a number here on
 * V8 and JavaScriptCore alike (the JS loop 2.5–5.5); with each value's
 * mask chosen by a scalar comparison and `select` (likely compiled to a
 * branch that mispredicts on the coin's toss: not checked) the pass took
 * 3.8–4.5 ns a value, with two values' masks as one vector comparison ~1.5
 * (65,536 values a call, 300 calls). Measured in the kind: see
 * `SimdKernels.dropout`.
 *
 * @module
 */
import { type Code, doWhile, F64, Func, type FunctionDef, I32, op, V128 } from "./assemble.ts";

/** Alea's multiplier. */
const MULTIPLIER = 2091639;

/** 2^-32: the carry's weight in a step. */
const UNIT = 2 ** -32;

/**
 * `dropout(x, out, mask, count, s0, s1, s2, carry, kept, scale)`: for
 * `count` (≥ 1) float64 values at `x`, Alea's next `count` numbers from the
 * state `s0`, `s1`, `s2`, `carry` — each step `t = 2091639·s0`,
 * `f = (t − ⌊t⌋) + carry·2^-32`, the carry `⌊t⌋` (plus 1 and `f − 1` where
 * `f ≥ 1`), the state shifted with `f` last — and for each number `u`
 * rounded to float32, `mask = u ≥ kept ? scale : 0` and `out = x · mask`
 * (float64 arrays `out` and `mask`). Two values a turn: their draws one after
 * the other, their masks and outputs as one float64x2 vector (the mask a
 * comparison's bits and `scale`: no branch on a coin's toss); an odd last
 * value alone, in lane 0.
 */
export function dropoutFunction(): FunctionDef {
  const f = new Func("dropout");
  const [x, out, mask, count] = f.params("x", "out", "mask", "count");
  const [s0, s1, s2, carry, kept, scale] = ["s0", "s1", "s2", "carry", "kept", "scale"].map((n) => f.param(n, F64));
  const [product, whole, fraction] = f.locals(F64, "product", "whole", "fraction");
  const [draws, masks, KEPT, SCALE] = f.locals(V128, "draws", "masks", "KEPT", "SCALE");
  const pairs = f.local("pairs", I32);
  const { get, set, tee, increment } = f;
  const { i32 } = op;
  // One step of Alea: s2 ← the next number (the state shifted), then that number rounded to float32 (as float64).
  const step: Code = [
    // t = 2091639·s0, ⌊t⌋
    ...op.f64(MULTIPLIER),
    ...get(s0),
    ...op.f64Mul,
    ...tee(product),
    ...op.f64Floor,
    ...set(whole),
    // f = (t − ⌊t⌋) + carry·2^-32; carry ← ⌊t⌋, and where f reached 1 (rarely: a branch, so the next step's carry
    // need not wait for this comparison), f − 1 and one more carry
    ...get(product),
    ...get(whole),
    ...op.f64Sub,
    ...get(carry),
    ...op.f64(UNIT),
    ...op.f64Mul,
    ...op.f64Add,
    ...set(fraction),
    ...get(whole),
    ...set(carry),
    ...get(fraction),
    ...op.f64(1),
    ...op.f64Ge,
    ...op.if,
    ...get(fraction),
    ...op.f64(1),
    ...op.f64Sub,
    ...set(fraction),
    ...get(carry),
    ...op.f64(1),
    ...op.f64Add,
    ...set(carry),
    ...op.end,
    // s0 ← s1, s1 ← s2, s2 ← f
    ...get(s1),
    ...set(s0),
    ...get(s2),
    ...set(s1),
    ...get(fraction),
    ...tee(s2),
    ...op.f32DemoteF64,
    ...op.f64PromoteF32,
  ];
  // masks = (draws ≥ kept) & scale, lane by lane.
  const toMasks: Code = [...get(draws), ...get(KEPT), ...op.f64x2Ge, ...get(SCALE), ...op.v128And, ...set(masks)];
  return f.build([
    ...get(kept),
    ...op.f64x2Splat,
    ...set(KEPT),
    ...get(scale),
    ...op.f64x2Splat,
    ...set(SCALE),
    ...get(count),
    ...i32(1),
    ...op.shrU,
    ...tee(pairs),
    ...op.if,
    ...doWhile([
      ...step,
      ...op.f64x2Splat,
      ...step,
      ...op.f64x2ReplaceLane(1),
      ...set(draws),
      ...toMasks,
      ...get(mask),
      ...get(masks),
      ...op.v128Store(),
      ...get(out),
      ...get(x),
      ...op.v128Load(),
      ...get(masks),
      ...op.f64x2Mul,
      ...op.v128Store(),
      ...increment(x, i32(16)),
      ...increment(out, i32(16)),
      ...increment(mask, i32(16)),
      ...get(pairs),
      ...i32(1),
      ...op.sub,
      ...tee(pairs),
    ], []),
    ...op.end,
    // An odd last value: lane 0 alone.
    ...get(count),
    ...i32(1),
    ...op.and,
    ...op.if,
    ...step,
    ...op.f64x2Splat,
    ...set(draws),
    ...toMasks,
    ...get(mask),
    ...get(masks),
    ...op.store64Lane(0),
    ...get(out),
    ...get(x),
    ...op.load64Zero(),
    ...get(masks),
    ...op.f64x2Mul,
    ...op.store64Lane(0),
    ...op.end,
  ]);
}

/** `dropout`'s signature (byte addresses in the kernels' memory, then Alea's state and the keep decision's numbers). */
export type Dropout = (
  x: number,
  out: number,
  mask: number,
  count: number,
  s0: number,
  s1: number,
  s2: number,
  carry: number,
  kept: number,
  scale: number,
) => void;
