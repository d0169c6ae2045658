/**
 * Adam's update on the SIMD kernels, four weights at a time, as tfjs's
 * `AdamOptimizer.applyGradients` computes it: the same float32 operations in
 * the same order, each rounded to float32 (tfjs's cpu backend computes each
 * op in float64 and stores it in a Float32Array, which for +, −, ·, / and √
 * of float32 operands is the correctly rounded float32 result — what the
 * `f32x4` instructions give). So, from the same gradients, the weights and
 * moments are bit for bit what `model.fit` on the cpu backend writes:
 *
 *   m ← m·β1 + g·(1−β1)          v ← v·β2 + (g·g)·(1−β2)
 *   w ← (m / c1) / (√(v / c2) + ε) · (−lr) + w
 *
 * with `c1 = 1 − β1ᵗ`, `c2 = 1 − β2ᵗ` as tfjs keeps them (float32). Measured
 * against the float64 rule it replaced (one f64x2 division and square root a
 * pair of weights, rounded once on store): 2.0–3.6 ns a weight on one core
 * → see bench/README.md's fifth round.
 *
 * `adam` takes float64 gradients (the host engine's own), rounded to float32
 * as they are read — the float32 tensor tfjs would have had; `adam32` takes
 * float32 gradients (a product's values where it wrote them).
 *
 * @module
 */
import { type Code, doWhile, F64, Func, type FunctionDef, type Local, op, V128 } from "./assemble.ts";

/**
 * `adam(w, g, m, v, quads, b1, ob1, b2, ob2, c1, c2, eps, nlr)`: the update
 * of `4·quads` weights (float32 `w`, `m`, `v`; float64 gradients `g`, or
 * float32 ones with `float32Gradients`, as `adam32`). The scalars are
 * float32 values passed as float64: β1, 1−β1, β2, 1−β2, the bias corrections
 * c1 and c2, ε and −lr.
 */
export function adamFunction(float32Gradients = false): FunctionDef {
  const f = new Func(float32Gradients ? "adam32" : "adam");
  const [w, g, m, v, quads] = f.params("w", "g", "m", "v", "quads");
  const scalars = ["b1", "ob1", "b2", "ob2", "c1", "c2", "eps", "nlr"].map((n) => f.param(n, F64));
  const [gv, mv, vv, B1, OB1, B2, OB2, C1, C2, EPS, NLR] = f.locals(
    V128,
    "gv",
    "mv",
    "vv",
    "B1",
    "OB1",
    "B2",
    "OB2",
    "C1",
    "C2",
    "EPS",
    "NLR",
  );
  const { get, set, tee, increment } = f;
  const { i32 } = op;
  // A float64 scalar (a float32 value) in four float32 lanes: exact.
  const splat = (from: Local, to: Local): Code => [...get(from), ...op.f32DemoteF64, ...op.f32x4Splat, ...set(to)];
  // Four float64 gradients as float32 lanes: two pairs demoted, then joined.
  const gradients: Code = float32Gradients ? [...get(g), ...op.v128Load()] : [
    ...get(g),
    ...op.v128Load(),
    ...op.demoteZero,
    ...get(g),
    ...op.v128Load(16),
    ...op.demoteZero,
    ...op.shuffle32([0, 1, 4, 5]),
  ];
  // A moment's update, `slot·β + term·(1−β)`: kept in `into` and stored back in its slot.
  const moment = (slot: Local, beta: Local, oneMinus: Local, term: Code, into: Local): Code => [
    ...get(slot),
    ...op.v128Load(),
    ...get(beta),
    ...op.f32x4Mul,
    ...term,
    ...get(oneMinus),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...set(into),
    ...get(slot),
    ...get(into),
    ...op.v128Store(),
  ];
  return f.build([
    ...[B1, OB1, B2, OB2, C1, C2, EPS, NLR].flatMap((to, i) => splat(scalars[i], to)),
    ...doWhile([
      ...gradients,
      ...set(gv),
      ...moment(m, B1, OB1, get(gv), mv), // m·β1 + g·(1−β1)
      ...moment(v, B2, OB2, [...get(gv), ...get(gv), ...op.f32x4Mul], vv), // v·β2 + (g·g)·(1−β2)
      // (m / c1) / (√(v / c2) + ε) · (−lr) + w
      ...get(w),
      ...get(mv),
      ...get(C1),
      ...op.f32x4Div,
      ...get(vv),
      ...get(C2),
      ...op.f32x4Div,
      ...op.f32x4Sqrt,
      ...get(EPS),
      ...op.f32x4Add,
      ...op.f32x4Div,
      ...get(NLR),
      ...op.f32x4Mul,
      ...get(w),
      ...op.v128Load(),
      ...op.f32x4Add,
      ...op.v128Store(),
      ...increment(w, i32(16)),
      ...increment(m, i32(16)),
      ...increment(v, i32(16)),
      ...increment(g, i32(float32Gradients ? 16 : 32)),
      ...get(quads),
      ...i32(1),
      ...op.sub,
      ...tee(quads),
    ], []),
  ]);
}
