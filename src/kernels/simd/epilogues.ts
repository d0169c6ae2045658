/**
 * The elementwise kernels around the products, in WebAssembly: a product's
 * epilogues (`widen` to float64; `bias` with the activation forward; `slopes`,
 * the activation's derivative with the bias gradient, backward — for the
 * activations of the registry, `../activations.ts`, that have SIMD code) and `narrow`, float64
 * operands to float32. Each does the host engine's JS loop's float64
 * operations in its order, two values at a time, so the results are bit for
 * bit the JS loops' (tested); V8 ran those loops at ~2 ns a value here.
 *
 * @module
 */
import { type Code, doWhile, F64, Func, type FunctionDef, I32, type Local, op, V128 } from "./assemble.ts";
import { type Activation, ACTIVATION_LIST, type SimdLanes } from "../activations.ts";

/**
 * `widen(src, ldc, dst, rows, cols)`: `dst[r·cols + c] = src[r, c]` as
 * float64, for float32 rows `ldc` bytes apart (a product's padded rows).
 */
export function widenFunction(): FunctionDef {
  const f = new Func("widen");
  const [src, ldc, dst, rows, cols] = f.params("src", "ldc", "dst", "rows", "cols");
  const [c, at] = f.locals(I32, "c", "at");
  const { get, set, tee, increment } = f;
  const { i32, add } = op;
  return f.build([
    ...doWhile([
      ...i32(0),
      ...set(c),
      ...get(src),
      ...set(at),
      ...doWhile([
        ...get(dst),
        ...get(at),
        ...op.f32Load(),
        ...op.f64PromoteF32,
        ...op.f64Store(),
        ...increment(dst, i32(8)),
        ...increment(at, i32(4)),
        ...get(c),
        ...i32(1),
        ...add,
        ...tee(c),
        ...get(cols),
        ...op.ne,
      ], []),
      ...get(src),
      ...get(ldc),
      ...add,
      ...set(src),
      ...get(rows),
      ...i32(1),
      ...op.sub,
      ...tee(rows),
    ], []),
  ]);
}

/** The locals an epilogue's two-lane and one-lane steps work with. */
interface EpilogueLocals {
  /** The product value's read pointer. */
  at: Local;
  /** The per-row pointer (reset each row from its parameter). */
  row: Local;
  /** The value on two lanes (float64x2) and on one (float64). */
  v: Local;
  x: Local;
  /** `value` as a constant of the lanes: a vector local splat once before the loops (two lanes), or an f64 constant. */
  constant(value: number, two: boolean): Code;
}

/**
 * An elementwise epilogue over `rows` rows of `cols` float32 product values
 * (parameters `src`, `ldc` bytes apart, `rows`, `cols` of `f`): `lanes(true)`
 * on each two columns as float64x2, `lanes(false)` on an odd last one. It
 * declares the locals: the read pointer `at`, a per-row pointer named
 * `rowName` reset from the parameter `from` each row, the column `c`,
 * `pairs`, the vector `v`, the float64 `x`, and a vector for each constant
 * the lanes ask for.
 */
function epilogue(
  f: Func,
  [rowName, from]: [string, Local],
  lanes: (two: boolean, locals: EpilogueLocals) => Code,
): FunctionDef {
  const [src, ldc, rows, cols] = ["src", "ldc", "rows", "cols"].map((n) => f.named(n));
  const [at, row, c, pairs] = f.locals(I32, "at", rowName, "c", "pairs");
  const v = f.local("v", V128), x = f.local("x", F64);
  const { get, set, tee, increment } = f;
  const { i32, and } = op;
  const constants = new Map<number, Local>();
  const constant = (value: number, two: boolean): Code => {
    if (!two) return op.f64(value);
    let local = constants.get(value);
    if (!local) constants.set(value, local = f.local(`splat ${value}`, V128));
    return get(local);
  };
  const locals = { at, row, v, x, constant };
  const pair = lanes(true, locals), single = lanes(false, locals);
  return f.build([
    ...[...constants].flatMap(([value, local]) => [...op.f64(value), ...op.f64x2Splat, ...set(local)]),
    ...get(cols),
    ...i32(-2),
    ...and,
    ...set(pairs),
    ...op.block,
    ...get(rows),
    ...op.eqz,
    ...op.brIf(0),
    ...doWhile([
      ...get(src),
      ...set(at),
      ...get(from),
      ...set(row),
      ...i32(0),
      ...set(c),
      ...op.block,
      ...get(pairs),
      ...op.eqz,
      ...op.brIf(0),
      ...doWhile([...pair, ...increment(c, i32(2))], [...get(c), ...get(pairs), ...op.ne]),
      ...op.end,
      ...get(cols),
      ...i32(1),
      ...and,
      ...op.if,
      ...single,
      ...op.end,
      ...increment(src, get(ldc)),
      ...get(rows),
      ...i32(1),
      ...op.sub,
      ...tee(rows),
    ], []),
    ...op.end,
  ]);
}

/**
 * `if (act == code) { code of each activation }` for every activation of the
 * registry with SIMD epilogue code (`part`: its forward or its slope).
 */
function dispatch(f: Func, act: Local, part: (simd: NonNullable<Activation["simd"]>) => Code): Code {
  return ACTIVATION_LIST.flatMap((entry, code) => {
    const body = entry.simd ? part(entry.simd) : [];
    return body.length ? [...f.get(act), ...op.i32(code), ...op.eq, ...op.if, ...body, ...op.end] : [];
  });
}

/** Loads the float32 product values at the address on the stack as float64: two lanes, or one. */
const productValues = (two: boolean): Code =>
  two ? [...op.load64Zero(), ...op.promoteLow] : [...op.f32Load(), ...op.f64PromoteF32];

/**
 * `bias(src, ldc, bias, dst, rows, cols, act)`: a wide layer's forward
 * epilogue, `dst[r·cols + c] = act(src[r, c] + bias[c])` (float32 product
 * rows `ldc` bytes apart, float64 bias — none when `bias` is 0 — and
 * output; `act` an activation's code in the registry, `activations.ts`,
 * whose SIMD code runs here — any other: none): the host engine's JS
 * epilogue with the same float64 operations, two columns at a time (the JS
 * loops ran ~2 ns a value on V8).
 */
export function biasFunction(): FunctionDef {
  const f = new Func("bias");
  const [, , bias, dst, , , act] = f.params("src", "ldc", "bias", "dst", "rows", "cols", "act");
  const { get, set, increment } = f;
  const { i32 } = op;
  // The same steps on two lanes (float64x2 in `v`) and on one (float64 in `x`).
  const lanes = (two: boolean, { at, row: b, v, x, constant }: EpilogueLocals): Code => {
    const [into, add] = two ? [v, op.f64x2Add] : [x, op.f64Add];
    const simdLanes: SimdLanes = { two, get, set, value: into, below: into, constant: (c) => constant(c, two) };
    return [
      ...get(at),
      ...productValues(two),
      ...set(into),
      ...get(bias),
      ...op.if,
      ...get(into),
      ...get(b),
      ...(two ? op.v128Load() : op.f64Load()),
      ...add,
      ...set(into),
      ...op.end,
      ...dispatch(f, act, (simd) => simd.forward(simdLanes)),
      ...get(dst),
      ...get(into),
      ...(two ? op.v128Store() : op.f64Store()),
      ...increment(at, i32(two ? 8 : 4)),
      ...increment(b, i32(two ? 16 : 8)),
      ...increment(dst, i32(two ? 16 : 8)),
    ];
  };
  return epilogue(f, ["b", bias], lanes);
}

/**
 * `slopes(src, ldc, below, dst, rows, cols, act, biasGrad)`: the epilogue of
 * a wide layer's gradient to the layer below, `g = src[r, c] · act'(below)`
 * stored at `dst[r·cols + c]` and added into `biasGrad[c]` (none when 0),
 * row after row as the JS epilogue adds them. The slope is that of the
 * activation whose registry code is `act`, from the output `below`, where it
 * has SIMD code (else none: linear's, 1). With `float64`, `slopes64`: the
 * same over float64 gradients `src` (rows `ldc` bytes apart; `dst` may be
 * `src`), the layer engine's loops over a layer's output gradient.
 */
export function slopesFunction(float64 = false): FunctionDef {
  const f = new Func(float64 ? "slopes64" : "slopes");
  const [, , below, dst, , , act, biasGrad] = f.params(
    "src",
    "ldc",
    "below",
    "dst",
    "rows",
    "cols",
    "act",
    "biasGrad",
  );
  const { get, set, increment } = f;
  const { i32 } = op;
  // The same steps on two lanes (float64x2 in `v`) and on one (float64 in `x`).
  const lanes = (two: boolean, { at, row: bg, v, x, constant }: EpilogueLocals): Code => {
    const into = two ? v : x, bytes = two ? 16 : 8;
    const simdLanes: SimdLanes = { two, get, set, value: into, below, constant: (c) => constant(c, two) };
    return [
      ...get(at),
      ...(float64 ? (two ? op.v128Load() : op.f64Load()) : productValues(two)),
      ...set(into),
      ...dispatch(f, act, (simd) => simd.slope(simdLanes)),
      ...get(dst),
      ...get(into),
      ...(two ? op.v128Store() : op.f64Store()),
      ...get(biasGrad),
      ...op.if,
      ...get(bg),
      ...get(bg),
      ...(two ? op.v128Load() : op.f64Load()),
      ...get(into),
      ...(two ? op.f64x2Add : op.f64Add),
      ...(two ? op.v128Store() : op.f64Store()),
      ...op.end,
      ...increment(at, i32(float64 ? bytes : bytes / 2)),
      ...increment(below, i32(bytes)),
      ...increment(dst, i32(bytes)),
      ...increment(bg, i32(bytes)),
    ];
  };
  return epilogue(f, ["bg", biasGrad], lanes);
}

/** `narrow(src, dst, count)`: `count` float64 values at `src` as float32 at `dst` (rounded to nearest, as JS stores them). */
export function narrowFunction(): FunctionDef {
  const f = new Func("narrow");
  const [src, dst, count] = f.params("src", "dst", "count");
  const { get, increment } = f;
  const { i32 } = op;
  return f.build([
    ...op.block,
    ...op.loop,
    ...get(count),
    ...i32(2),
    ...op.ltU,
    ...op.brIf(1),
    ...get(dst),
    ...get(src),
    ...op.v128Load(),
    ...op.demoteZero,
    ...op.store64Lane(0),
    ...increment(src, i32(16)),
    ...increment(dst, i32(8)),
    ...increment(count, i32(-2)),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...get(count),
    ...op.if,
    ...get(dst),
    ...get(src),
    ...op.f64Load(),
    ...op.f32DemoteF64,
    ...op.f32Store(),
    ...op.end,
  ]);
}
