/**
 * Just enough of the WebAssembly binary format to build fitstream's product
 * kernels at run time: one imported shared memory, functions of i32
 * parameters, and the integer, float and SIMD instructions the kernels use.
 * Building the bytes here (rather than shipping a compiled `.wasm`) keeps the
 * kernels readable and reviewable in TypeScript, and lets one source make
 * the two variants (with and without the relaxed-SIMD fused multiply-add).
 *
 * @module
 */

/** Bytes of one instruction or a run of them. */
export type Code = number[];

/** An unsigned LEB128 integer. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** A signed LEB128 integer (32-bit). */
export function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** Value types. */
export const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;

const simd = (op: number, ...rest: number[]): Code => [0xfd, ...uleb(op), ...rest];
const memarg = (align: number, offset: number) => [align, ...uleb(offset)];

/** The instructions the kernels use, by their text-format names. */
export const op = {
  get: (i: number): Code => [0x20, ...uleb(i)],
  set: (i: number): Code => [0x21, ...uleb(i)],
  tee: (i: number): Code => [0x22, ...uleb(i)],
  i32: (v: number): Code => [0x41, ...sleb(v)],
  add: [0x6a] as Code,
  sub: [0x6b] as Code,
  mul: [0x6c] as Code,
  shl: [0x74] as Code,
  eq: [0x46] as Code,
  ne: [0x47] as Code,
  eqz: [0x45] as Code,
  ltU: [0x49] as Code,
  geU: [0x4f] as Code,
  loop: [0x03, 0x40] as Code,
  block: [0x02, 0x40] as Code,
  if: [0x04, 0x40] as Code,
  else: [0x05] as Code,
  end: [0x0b] as Code,
  br: (depth: number): Code => [0x0c, ...uleb(depth)],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  i32Load: (offset = 0): Code => [0x28, ...memarg(2, offset)],
  f32Load: (offset = 0): Code => [0x2a, ...memarg(2, offset)],
  f32Store: (offset = 0): Code => [0x38, ...memarg(2, offset)],
  f32Zero: [0x43, 0, 0, 0, 0] as Code,
  v128Load: (offset = 0): Code => simd(0x00, ...memarg(4, offset)),
  v128Store: (offset = 0): Code => simd(0x0b, ...memarg(4, offset)),
  load32Splat: (offset = 0): Code => simd(0x09, ...memarg(2, offset)),
  v128Zero: simd(0x0c, ...new Array(16).fill(0)),
  f32x4Add: simd(0xe4),
  f32x4Mul: simd(0xe6),
  /** `a · b + c` (relaxed SIMD: fused where the machine has it). */
  f32x4RelaxedMadd: simd(0x105),
  f64Load: (offset = 0): Code => [0x2b, ...memarg(3, offset)],
  f64Store: (offset = 0): Code => [0x39, ...memarg(3, offset)],
  f64PromoteF32: [0xbb] as Code,
  f32DemoteF64: [0xb6] as Code,
  f64Add: [0xa0] as Code,
  f64Mul: [0xa2] as Code,
  f64Div: [0xa3] as Code,
  f64Sqrt: [0x9f] as Code,
  /** Two floats into the low lanes, zeros above. */
  load64Zero: (offset = 0): Code => simd(0x5d, ...memarg(3, offset)),
  /** Stores lane `lane` of the vector as 64 bits. */
  store64Lane: (lane: number, offset = 0): Code => simd(0x5b, ...memarg(3, offset), lane),
  /** The two low float32 lanes as float64. */
  promoteLow: simd(0x5f),
  /** float64 lanes to float32, in the low lanes. */
  demoteZero: simd(0x5e),
  f64x2Splat: simd(0x14),
  f64x2Sqrt: simd(0xef),
  f64x2Add: simd(0xf0),
  f64x2Mul: simd(0xf2),
  f64x2Div: simd(0xf3),
  f64x2Abs: simd(0xec),
  f64x2Gt: simd(0x4a),
  v128And: simd(0x4e),
  /** Lanes of the first vector where the third's bits are set, of the second elsewhere. */
  v128Bitselect: simd(0x52),
  i32x4Splat: simd(0x11),
  i32x4Eq: simd(0x37),
  f32x4Splat: simd(0x13),
  f32x4Gt: simd(0x44),
  f64Abs: [0x99] as Code,
  f64Gt: [0x64] as Code,
  select: [0x1b] as Code,
  /** A float32 constant. */
  f32: (v: number): Code => [0x43, ...new Uint8Array(new Float32Array([v]).buffer)],
  /** A float64 constant. */
  f64: (v: number): Code => [0x44, ...new Uint8Array(new Float64Array([v]).buffer)],
};

/** `do { body } while (condition)` (an empty condition: the body leaves it on the stack). */
export const doWhile = (body: Code, condition: Code): Code => [
  ...op.loop,
  ...body,
  ...condition,
  ...op.brIf(0),
  ...op.end,
];

/** `[0, 1, …, count − 1]`: a function's parameters and locals by index. */
export const indices = (count: number): number[] => Array.from({ length: count }, (_, i) => i);

/** `local += by` (i32). */
export function increment(local: number, by: Code): Code {
  return [...op.get(local), ...by, ...op.add, ...op.set(local)];
}

/** A function: its parameters (a count of i32s, or their types), its extra locals (types), its body and its export name. */
export interface FunctionDef {
  name: string;
  params: number | number[];
  locals: number[];
  body: Code;
}

const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
const vector = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
};

/**
 * A module that imports `env.memory` (shared, `maxPages` at most) and exports
 * `functions`; no function returns a value.
 */
export function assemble(functions: FunctionDef[], maxPages: number): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => {
    const params = typeof f.params === "number" ? new Array(f.params).fill(I32) : f.params;
    return [0x60, ...uleb(params.length), ...params, 0];
  });
  const imports = vector([[...name("env"), ...name("memory"), 0x02, 0x03, ...uleb(1), ...uleb(maxPages)]]);
  const bodies = functions.map((f) => {
    const runs: number[][] = [];
    for (const type of f.locals) {
      const last = runs[runs.length - 1];
      if (last && last[1] === type) last[0]++;
      else runs.push([1, type]);
    }
    const body = [...vector(runs.map(([count, type]) => [...uleb(count), type])), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector(types)),
    ...section(2, imports),
    ...section(3, vector(functions.map((_, i) => uleb(i)))),
    ...section(7, vector(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vector(bodies)),
  ]);
}
