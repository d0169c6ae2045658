// The WebAssembly assembler that builds the SIMD kernels: its LEB128 encodings, every opcode against the value the
// WebAssembly specification gives it, small modules assembled and run, and the mistakes it refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  assemble,
  type Code,
  doWhile,
  F64,
  FORMAT,
  Func,
  I32,
  localRuns,
  op,
  OPCODES,
  SECTIONS,
  SIMD_OPCODES,
  sleb,
  TYPES,
  uleb,
  V128,
} from "../src/kernels/simd/assemble.ts";
import { kernelModule } from "../src/kernels/simd/kernels.ts";
import { biasAddFunction, columnSumsFunction } from "../src/kernels/simd/bias.ts";
import { pool2x2GradFunction } from "../src/kernels/simd/max_pool_grad.ts";
import { readdirSync, readFileSync } from "node:fs";

// Written from the WebAssembly 2.0 core specification (§5.4 Instructions, §5.3 Types, §5.5 Modules) and the
// relaxed-SIMD proposal's opcode table, not from the assembler's own table.
const SPEC_OPCODES: Record<string, number> = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  select: 0x1b,
  "local.get": 0x20,
  "local.set": 0x21,
  "local.tee": 0x22,
  "i32.load": 0x28,
  "f32.load": 0x2a,
  "f64.load": 0x2b,
  "i32.store": 0x36,
  "f32.store": 0x38,
  "f64.store": 0x39,
  "i32.const": 0x41,
  "f32.const": 0x43,
  "f64.const": 0x44,
  "i32.eqz": 0x45,
  "i32.eq": 0x46,
  "i32.ne": 0x47,
  "i32.lt_u": 0x49,
  "i32.gt_u": 0x4b,
  "i32.le_u": 0x4d,
  "i32.ge_u": 0x4f,
  "f64.gt": 0x64,
  "f64.ge": 0x66,
  "i32.add": 0x6a,
  "i32.sub": 0x6b,
  "i32.mul": 0x6c,
  "i32.rem_u": 0x70,
  "i32.and": 0x71,
  "i32.or": 0x72,
  "i32.shl": 0x74,
  "i32.shr_u": 0x76,
  "f64.abs": 0x99,
  "f64.floor": 0x9c,
  "f64.sqrt": 0x9f,
  "f64.add": 0xa0,
  "f64.sub": 0xa1,
  "f64.mul": 0xa2,
  "f64.div": 0xa3,
  "f32.demote_f64": 0xb6,
  "f64.promote_f32": 0xbb,
  simd: 0xfd,
};

const SPEC_SIMD_OPCODES: Record<string, number> = {
  "v128.load": 0,
  "v128.load32_splat": 9,
  "v128.store": 11,
  "v128.const": 12,
  "i8x16.shuffle": 13,
  "i32x4.splat": 17,
  "f32x4.splat": 19,
  "f64x2.splat": 20,
  "i32x4.extract_lane": 27,
  "f64x2.replace_lane": 34,
  "i32x4.eq": 55,
  "f32x4.gt": 68,
  "f32x4.le": 69,
  "f64x2.lt": 73,
  "f64x2.gt": 74,
  "f64x2.ge": 76,
  "v128.and": 78,
  "v128.andnot": 79,
  "v128.bitselect": 82,
  "v128.store32_lane": 90,
  "v128.store64_lane": 91,
  "v128.load32_zero": 92,
  "v128.load64_zero": 93,
  "f32x4.demote_f64x2_zero": 94,
  "f64x2.promote_low_f32x4": 95,
  "f32x4.neg": 225,
  "f32x4.sqrt": 227,
  "f32x4.add": 228,
  "f32x4.sub": 229,
  "f32x4.mul": 230,
  "f32x4.div": 231,
  "f32x4.pmax": 235,
  "f64x2.abs": 236,
  "f64x2.sqrt": 239,
  "f64x2.add": 240,
  "f64x2.sub": 241,
  "f64x2.mul": 242,
  "f64x2.div": 243,
  "f64x2.pmin": 246,
  "f64x2.pmax": 247,
  "i32x4.trunc_sat_f64x2_s_zero": 252,
  "f64x2.convert_low_i32x4_s": 254,
  "f32x4.relaxed_madd": 261,
};

test("unsigned LEB128 encodes the edge values as the specification does, and refuses what is not a u32", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [255, [0xff, 0x01]],
    [16383, [0xff, 0x7f]],
    [16384, [0x80, 0x80, 0x01]],
    [624485, [0xe5, 0x8e, 0x26]],
    [2 ** 31, [0x80, 0x80, 0x80, 0x80, 0x08]],
    [2 ** 32 - 1, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [value, bytes] of cases) assert.deepEqual(uleb(value), bytes, String(value));
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) assert.throws(() => uleb(bad), RangeError, String(bad));
});

test("signed LEB128 encodes the edge values as the specification does, and refuses what is not an i32", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [-1, [0x7f]],
    [63, [0x3f]],
    [64, [0xc0, 0x00]],
    [-64, [0x40]],
    [-65, [0xbf, 0x7f]],
    [127, [0xff, 0x00]],
    [-128, [0x80, 0x7f]],
    [-123456, [0xc0, 0xbb, 0x78]],
    [2 ** 31 - 1, [0xff, 0xff, 0xff, 0xff, 0x07]],
    [-(2 ** 31), [0x80, 0x80, 0x80, 0x80, 0x78]],
  ];
  for (const [value, bytes] of cases) assert.deepEqual(sleb(value), bytes, String(value));
  for (const bad of [2 ** 31, -(2 ** 31) - 1, 0.5]) assert.throws(() => sleb(bad), RangeError, String(bad));
});

test("every opcode in the assembler's tables has the byte the WebAssembly specification gives it", () => {
  assert.deepEqual({ ...OPCODES }, SPEC_OPCODES);
  assert.deepEqual({ ...SIMD_OPCODES }, SPEC_SIMD_OPCODES);
  assert.deepEqual({ ...TYPES }, { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, empty: 0x40 });
  assert.deepEqual({ ...SECTIONS }, { type: 1, import: 2, function: 3, export: 7, code: 10 });
  assert.deepEqual([...FORMAT.magic, ...FORMAT.version], [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  assert.deepEqual([FORMAT.func, FORMAT.funcKind, FORMAT.memoryKind, FORMAT.sharedLimits], [0x60, 0, 2, 3]);
  // The instruction helpers put the prefix, the LEB128 opcode and the immediates in order.
  assert.deepEqual(op.f32x4RelaxedMadd, [0xfd, 0x85, 0x02]);
  assert.deepEqual(op.v128Load(16), [0xfd, 0x00, 4, 16]);
  assert.deepEqual(op.store64Lane(1, 200), [0xfd, 0x5b, 3, 0xc8, 0x01, 1]);
  assert.deepEqual(op.store32Lane(3, 4), [0xfd, 0x5a, 2, 4, 3]);
  assert.deepEqual(op.load32Zero(), [0xfd, 0x5c, 2, 0]);
  assert.deepEqual(op.shuffle32([0, 4, 1, 5]), [0xfd, 0x0d, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23]);
  assert.deepEqual(op.i32(-1), [0x41, 0x7f]);
  assert.deepEqual(op.f64(1), [0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  assert.deepEqual(op.f32(-Infinity), [0x43, 0, 0, 0x80, 0xff]);
  assert.deepEqual(op.f32(1), [0x43, 0, 0, 0x80, 0x3f]);
  assert.deepEqual(op.loop, [0x03, 0x40]);
});

test("local declarations are runs of one type, counted", () => {
  assert.deepEqual(localRuns([]), [0]);
  assert.deepEqual(localRuns([I32, I32, V128, I32]), [3, 2, I32, 1, V128, 1, I32]);
});

test("the smallest module, one empty function, has the sections the specification lays out, byte for byte", () => {
  const bytes = assemble([new Func("f").build([])], 1);
  const env = [3, 101, 110, 118], memory = [6, 109, 101, 109, 111, 114, 121];
  assert.deepEqual([...bytes], [
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...[1, 4, 1, 0x60, 0, 0], // type: one () → ()
    ...[2, 16, 1, ...env, ...memory, 2, 3, 1, 1], // import: env.memory, shared, 1 to 1 pages
    ...[3, 2, 1, 0], // function: type 0
    ...[7, 5, 1, 1, 102, 0, 0], // export: "f", function 0
    ...[10, 4, 1, 2, 0, 0x0b], // code: a body of 2 bytes, no locals, end
  ]);
  assert.ok(WebAssembly.validate(bytes));
});

/** A small module on its own shared memory: `sum`, `axpy`, `roots`, `pick`. */
function tinyModule(): Uint8Array<ArrayBuffer> {
  const { i32, add } = op;
  // sum(n, out): out[0] = 1 + 2 + … + n (a do-while over a local named `i`).
  const sum = new Func("sum");
  const [n, out] = sum.params("n", "out");
  const [i, total] = sum.locals(I32, "i", "total");
  const sumBody: Code = [
    ...i32(0),
    ...sum.set(total),
    ...i32(1),
    ...sum.set(i),
    ...doWhile([...sum.get(total), ...sum.get(i), ...add, ...sum.set(total), ...sum.increment(i, i32(1))], [
      ...sum.get(i),
      ...sum.get(n),
      ...op.leU,
    ]),
    ...sum.get(out),
    ...sum.get("total"),
    ...op.i32Store(),
  ];
  // axpy(x, y, out, count): out = x · y + out on float32 lanes, four at a time.
  const axpy = new Func("axpy");
  const [x, y, dst, count] = axpy.params("x", "y", "dst", "count");
  const acc = axpy.local("acc", V128);
  const axpyBody = doWhile([
    ...axpy.get(x),
    ...op.v128Load(),
    ...axpy.get(y),
    ...op.v128Load(),
    ...op.f32x4Mul,
    ...axpy.get(dst),
    ...op.v128Load(),
    ...op.f32x4Add,
    ...axpy.set(acc),
    ...axpy.get(dst),
    ...axpy.get(acc),
    ...op.v128Store(),
    ...[x, y, dst].flatMap((p) => axpy.increment(p, i32(16))),
    ...axpy.increment(count, i32(-4)),
  ], [...axpy.get(count), ...op.eqz, ...op.eqz]);
  // roots(at, scale): two float64s at `at` become √(v · scale) / 2 (an f64 parameter, an f64x2 local).
  const roots = new Func("roots");
  const at = roots.param("at");
  const scale = roots.param("scale", F64);
  const pair = roots.local("pair", V128);
  const rootsBody: Code = [
    ...roots.get(at),
    ...roots.get(at),
    ...op.v128Load(),
    ...roots.get(scale),
    ...op.f64x2Splat,
    ...op.f64x2Mul,
    ...op.f64x2Sqrt,
    ...roots.set(pair),
    ...roots.get(pair),
    ...op.f64(2),
    ...op.f64x2Splat,
    ...op.f64x2Div,
    ...op.v128Store(),
  ];
  // pick(at, flag): float32 at `at` = flag ? 1.5 (as float64, demoted) : 0, with if/else.
  const pick = new Func("pick");
  const [place, flag] = pick.params("at", "flag");
  const pickBody: Code = [
    ...pick.get(flag),
    ...op.if,
    ...pick.get(place),
    ...op.f64(1.5),
    ...op.f32DemoteF64,
    ...op.f32Store(),
    ...op.else,
    ...pick.get(place),
    ...op.f32Zero,
    ...op.f32Store(),
    ...op.end,
  ];
  return assemble([
    sum.build(sumBody),
    axpy.build(axpyBody),
    roots.build(rootsBody),
    pick.build(pickBody),
  ], 2);
}

test("a small module assembled here validates and runs: a loop over named locals, f32x4 and f64x2 SIMD, if/else, on an imported shared memory", () => {
  const bytes = tinyModule();
  assert.ok(WebAssembly.validate(bytes));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const e = instance.exports as Record<string, (...args: number[]) => void>;
  assert.deepEqual(Object.keys(e).sort(), ["axpy", "pick", "roots", "sum"]);
  const words = new Int32Array(memory.buffer), floats = new Float32Array(memory.buffer);
  e.sum(100, 64);
  assert.equal(words[16], 5050);
  floats.set([1, 2, 3, 4, 5, 6, 7, 8], 32);
  floats.set([0.5, 0.5, 0.5, 0.5, 2, 2, 2, 2], 48);
  floats.set([10, 10, 10, 10, 10, 10, 10, 10], 64);
  e.axpy(128, 192, 256, 8);
  assert.deepEqual([...floats.subarray(64, 72)], [10.5, 11, 11.5, 12, 20, 22, 24, 26]);
  const doubles = new Float64Array(memory.buffer);
  doubles.set([4, 9], 64);
  e.roots(512, 4);
  assert.deepEqual([...doubles.subarray(64, 66)], [2, 3]);
  e.pick(1024, 1);
  e.pick(1028, 0);
  assert.deepEqual([...floats.subarray(256, 258)], [1.5, 0]);
});

test("the kernel modules validate and export the twenty-one kernels, with and without the fused multiply-add", () => {
  for (const fused of [false, true]) {
    const bytes = kernelModule(fused, 16384, 2);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    // Relaxed SIMD may be missing from a runtime: then only the unfused module must validate (products.ts picks).
    if (!fused) assert.ok(WebAssembly.validate(bytes));
    if (!WebAssembly.validate(bytes)) continue;
    const exports = WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => e.name);
    assert.deepEqual(exports, [
      "pack",
      "panels",
      "adam",
      "widen",
      "bias",
      "slopes",
      "narrow",
      "taps",
      "convolve",
      "poolGrad",
      "slopes64",
      "bnForward",
      "bnBackward",
      "scatter",
      "adam32",
      "dropout",
      "dots",
      "lanes",
      "lstmStep",
      "dots32",
      "lanes32",
    ]);
  }
});

test("the assembler refuses unknown local names, locals of another function, duplicates and mistyped uses", () => {
  const f = new Func("f");
  const [a] = f.params("a");
  const v = f.local("v", V128);
  assert.throws(() => f.get("b"), /f: no local named "b" \(it has a, v\)/);
  assert.throws(() => f.param("late"), /parameter "late" declared after the locals/);
  assert.throws(() => f.local("a", I32), /local "a" declared twice/);
  assert.throws(() => f.increment(v, op.i32(1)), /increment needs an i32 local, "v" is v128/);
  assert.throws(() => f.local("bad", 0x40 as typeof I32), /must have a value type/);
  const g = new Func("g");
  assert.throws(() => g.set(a), /g: local "a" belongs to function f/);
  assert.throws(() => op.store64Lane(2), /lane: must be an integer in \[0, 2\)/);
  assert.throws(() => op.store32Lane(4), /lane: must be an integer in \[0, 4\)/);
  assert.throws(() => op.shuffle32([0, 1, 2, 8]), /lane: must be an integer in \[0, 8\)/);
  assert.throws(() => op.shuffle32([0, 1]), /shuffle32: lanes must be 4/);
  assert.throws(() => op.i32(2 ** 31), RangeError);
  // What the assembler does not check, the runtime's validator does: an f64 stored into an i32 local.
  const h = new Func("h");
  const n = h.local("n", I32);
  assert.equal(WebAssembly.validate(assemble([h.build([...op.f64(1), ...h.set(n)])], 1)), false);
  assert.equal(WebAssembly.validate(assemble([h.build([...op.i32(1), ...h.set(n)])], 1)), true);
  assert.deepEqual(h.build([]).locals, [I32]);
  assert.deepEqual(f.build([]).params, [I32]);
});

test("no file that emits code writes an opcode byte of its own: every byte comes from the assembler's tables", () => {
  const folder = new URL("../src/kernels/simd/", import.meta.url);
  const emitters = readdirSync(folder).filter((name) => {
    const text = readFileSync(new URL(name, folder), "utf8");
    return name !== "assemble.ts" && text.includes('from "./assemble.ts"');
  });
  assert.deepEqual(emitters.sort(), [
    "adam.ts",
    "batch_norm.ts",
    "bias.ts",
    "column.ts",
    "convolve.ts",
    "dropout.ts",
    "epilogues.ts",
    "filter_taps.ts",
    "in_heap.ts",
    "kernels.ts",
    "lstm_cell.ts",
    "max_pool.ts",
    "max_pool_grad.ts",
    "scatter.ts",
  ]);
  for (const name of emitters) {
    const text = readFileSync(new URL(name, folder), "utf8");
    assert.doesNotMatch(text, /\b0x[0-9a-f]+\b/i, name);
  }
});

test("the in-heap kernels (bias add with and without relu, column sums, 2 × 2 pool gradient) validate, and column sums refuse odd or wide rows", () => {
  const kernels = [biasAddFunction(), biasAddFunction(true), columnSumsFunction(2), columnSumsFunction(64)];
  for (const f of [...kernels, pool2x2GradFunction()]) {
    assert.ok(WebAssembly.validate(assemble([f], 0, false)), f.name);
  }
  assert.throws(() => columnSumsFunction(7), /columnSumsFunction: width must be even, 2 to 64, got 7/);
  assert.throws(() => columnSumsFunction(66), RangeError);
});
