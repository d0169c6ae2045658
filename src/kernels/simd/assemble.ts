/**
 * Just enough of the WebAssembly binary format to build fitstream's product
 * kernels at run time: one imported shared memory, functions of i32 and f64
 * parameters, and the integer, float and SIMD instructions the kernels use.
 * Building the bytes here (rather than shipping a compiled `.wasm`) keeps the
 * kernels readable and reviewable in TypeScript, and lets one source make
 * the two variants (with and without the relaxed-SIMD fused multiply-add).
 *
 * Every byte of the format lives in one of the named tables below
 * ({@link OPCODES}, {@link SIMD_OPCODES}, {@link TYPES}, {@link SECTIONS},
 * {@link FORMAT}), spelled as the WebAssembly text format spells it; kernels
 * write instructions through {@link op} and reach their parameters and locals
 * by name through a {@link Func}.
 *
 * @module
 */

/** Bytes of one instruction or a run of them. */
export type Code = number[];

/** One-byte opcodes (WebAssembly core spec, "Binary Format › Instructions"), by their text-format names. */
export const OPCODES = {
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
  /** The prefix of every SIMD instruction; the {@link SIMD_OPCODES} number follows it as unsigned LEB128. */
  simd: 0xfd,
} as const;

/** SIMD opcodes (after the {@link OPCODES}.simd prefix; SIMD and relaxed-SIMD proposals), by text-format name. */
export const SIMD_OPCODES = {
  "v128.load": 0x00,
  "v128.load32_splat": 0x09,
  "v128.store": 0x0b,
  "v128.const": 0x0c,
  "i8x16.shuffle": 0x0d,
  "i32x4.splat": 0x11,
  "f32x4.splat": 0x13,
  "f64x2.splat": 0x14,
  "i32x4.extract_lane": 0x1b,
  "f64x2.replace_lane": 0x22,
  "i32x4.eq": 0x37,
  "f32x4.gt": 0x44,
  "f32x4.le": 0x45,
  "f64x2.lt": 0x49,
  "f64x2.gt": 0x4a,
  "f64x2.ge": 0x4c,
  "v128.and": 0x4e,
  "v128.andnot": 0x4f,
  /** Bits of the first vector where the third's are set, of the second elsewhere. */
  "v128.bitselect": 0x52,
  "v128.store32_lane": 0x5a,
  "v128.store64_lane": 0x5b,
  "v128.load32_zero": 0x5c,
  "v128.load64_zero": 0x5d,
  "f32x4.demote_f64x2_zero": 0x5e,
  "f64x2.promote_low_f32x4": 0x5f,
  "f32x4.neg": 0xe1,
  "f32x4.sqrt": 0xe3,
  "f32x4.add": 0xe4,
  "f32x4.sub": 0xe5,
  "f32x4.mul": 0xe6,
  "f32x4.div": 0xe7,
  /** The pseudo-maximum `a < b ? b : a`. */
  "f32x4.pmax": 0xeb,
  "f64x2.abs": 0xec,
  "f64x2.sqrt": 0xef,
  "f64x2.add": 0xf0,
  "f64x2.sub": 0xf1,
  "f64x2.mul": 0xf2,
  "f64x2.div": 0xf3,
  /** `b < a ? b : a`. */
  "f64x2.pmin": 0xf6,
  /** `a < b ? b : a`. */
  "f64x2.pmax": 0xf7,
  /** Toward zero, saturating (NaN to 0), into the two low lanes; zeros above. */
  "i32x4.trunc_sat_f64x2_s_zero": 0xfc,
  "f64x2.convert_low_i32x4_s": 0xfe,
  /** `a · b + c` (relaxed SIMD: fused where the machine has it). */
  "f32x4.relaxed_madd": 0x105,
} as const;

/** Value types (and the empty block type), as the binary format writes them. */
export const TYPES = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, empty: 0x40 } as const;

/** Section ids. */
export const SECTIONS = { type: 1, import: 2, function: 3, export: 7, code: 10 } as const;

/** The other fixed bytes of a module. */
export const FORMAT = {
  /** `\0asm`. */
  magic: [0x00, 0x61, 0x73, 0x6d],
  version: [0x01, 0x00, 0x00, 0x00],
  /** A function type's leading byte. */
  func: 0x60,
  /** Import and export kinds. */
  funcKind: 0x00,
  memoryKind: 0x02,
  /** Memory limits with a maximum, shared. */
  sharedLimits: 0x03,
} as const;

/** A value type of a parameter or local. */
export type ValueType = typeof TYPES.i32 | typeof TYPES.f64 | typeof TYPES.v128 | typeof TYPES.f32 | typeof TYPES.i64;

/** Value types, short. */
export const I32 = TYPES.i32, F64 = TYPES.f64, V128 = TYPES.v128;

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPES).map(([k, v]) => [v, k]));

/** An unsigned LEB128 integer (0 to 2³² − 1). */
export function uleb(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`uleb: value must be an integer in [0, 2^32), got ${value}`);
  }
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** A signed LEB128 integer (−2³¹ to 2³¹ − 1). */
export function sleb(value: number): number[] {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new RangeError(`sleb: value must be a 32-bit signed integer, got ${value}`);
  }
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

const one = (name: keyof typeof OPCODES): Code => [OPCODES[name]];
const simd = (name: keyof typeof SIMD_OPCODES, ...rest: number[]): Code => [
  OPCODES.simd,
  ...uleb(SIMD_OPCODES[name]),
  ...rest,
];
/** A memory immediate: log2 of the alignment, then the offset. */
const memarg = (align: number, offset: number) => [align, ...uleb(offset)];
const lane = (index: number, lanes: number): number => {
  if (!Number.isInteger(index) || index < 0 || index >= lanes) {
    throw new RangeError(`lane: must be an integer in [0, ${lanes}), got ${index}`);
  }
  return index;
};

/** The instructions the kernels use (locals: see {@link Func}). */
export const op = {
  i32: (v: number): Code => [OPCODES["i32.const"], ...sleb(v)],
  add: one("i32.add"),
  sub: one("i32.sub"),
  mul: one("i32.mul"),
  remU: one("i32.rem_u"),
  and: one("i32.and"),
  or: one("i32.or"),
  shl: one("i32.shl"),
  shrU: one("i32.shr_u"),
  eq: one("i32.eq"),
  ne: one("i32.ne"),
  eqz: one("i32.eqz"),
  ltU: one("i32.lt_u"),
  gtU: one("i32.gt_u"),
  leU: one("i32.le_u"),
  geU: one("i32.ge_u"),
  loop: [OPCODES.loop, TYPES.empty] as Code,
  block: [OPCODES.block, TYPES.empty] as Code,
  if: [OPCODES.if, TYPES.empty] as Code,
  else: one("else"),
  end: one("end"),
  br: (depth: number): Code => [OPCODES.br, ...uleb(depth)],
  brIf: (depth: number): Code => [OPCODES.br_if, ...uleb(depth)],
  select: one("select"),
  i32Load: (offset = 0): Code => [OPCODES["i32.load"], ...memarg(2, offset)],
  i32Store: (offset = 0): Code => [OPCODES["i32.store"], ...memarg(2, offset)],
  f32Load: (offset = 0): Code => [OPCODES["f32.load"], ...memarg(2, offset)],
  f32Store: (offset = 0): Code => [OPCODES["f32.store"], ...memarg(2, offset)],
  f32Zero: [OPCODES["f32.const"], 0, 0, 0, 0] as Code,
  v128Load: (offset = 0): Code => simd("v128.load", ...memarg(4, offset)),
  v128Store: (offset = 0): Code => simd("v128.store", ...memarg(4, offset)),
  load32Splat: (offset = 0): Code => simd("v128.load32_splat", ...memarg(2, offset)),
  v128Zero: simd("v128.const", ...new Array(16).fill(0)),
  /**
   * Four-lane shuffle of the two vectors on the stack: result lane `i` is
   * float lane `lanes[i]` of the pair (0–3 the first, 4–7 the second).
   */
  shuffle32: (lanes: number[]): Code => {
    if (lanes.length !== 4) throw new RangeError(`shuffle32: lanes must be 4 lane numbers, got ${lanes.length}`);
    return simd("i8x16.shuffle", ...lanes.flatMap((l) => [0, 1, 2, 3].map((b) => 4 * lane(l, 8) + b)));
  },
  f32x4Add: simd("f32x4.add"),
  f32x4Sub: simd("f32x4.sub"),
  f32x4Mul: simd("f32x4.mul"),
  f32x4Div: simd("f32x4.div"),
  f32x4Neg: simd("f32x4.neg"),
  f32x4Sqrt: simd("f32x4.sqrt"),
  /** `a < b ? b : a` per lane (a NaN `b`, or `b` equal to `a`, keeps `a`): one instruction on x86 and ARM. */
  f32x4Pmax: simd("f32x4.pmax"),
  /** `a · b + c` (relaxed SIMD: fused where the machine has it). */
  f32x4RelaxedMadd: simd("f32x4.relaxed_madd"),
  f64Load: (offset = 0): Code => [OPCODES["f64.load"], ...memarg(3, offset)],
  f64Store: (offset = 0): Code => [OPCODES["f64.store"], ...memarg(3, offset)],
  f64PromoteF32: one("f64.promote_f32"),
  f32DemoteF64: one("f32.demote_f64"),
  f64Add: one("f64.add"),
  f64Mul: one("f64.mul"),
  f64Div: one("f64.div"),
  f64Sqrt: one("f64.sqrt"),
  /** Two floats into the low lanes, zeros above. */
  load64Zero: (offset = 0): Code => simd("v128.load64_zero", ...memarg(3, offset)),
  /** One float into the lowest lane, zeros above. */
  load32Zero: (offset = 0): Code => simd("v128.load32_zero", ...memarg(2, offset)),
  /** Stores lane `index` (0 to 3) of the vector as 32 bits. */
  store32Lane: (index: number, offset = 0): Code => simd("v128.store32_lane", ...memarg(2, offset), lane(index, 4)),
  /** Stores lane `index` (0 or 1) of the vector as 64 bits. */
  store64Lane: (index: number, offset = 0): Code => simd("v128.store64_lane", ...memarg(3, offset), lane(index, 2)),
  /** The two low float32 lanes as float64. */
  promoteLow: simd("f64x2.promote_low_f32x4"),
  /** float64 lanes to float32, in the low lanes. */
  demoteZero: simd("f32x4.demote_f64x2_zero"),
  f64x2Splat: simd("f64x2.splat"),
  f64x2Sqrt: simd("f64x2.sqrt"),
  f64x2Add: simd("f64x2.add"),
  f64x2Sub: simd("f64x2.sub"),
  f64x2Mul: simd("f64x2.mul"),
  f64x2Div: simd("f64x2.div"),
  f64x2Abs: simd("f64x2.abs"),
  f64x2Gt: simd("f64x2.gt"),
  f64x2Lt: simd("f64x2.lt"),
  f64x2Pmin: simd("f64x2.pmin"),
  f64x2Pmax: simd("f64x2.pmax"),
  i32x4TruncSatF64x2Zero: simd("i32x4.trunc_sat_f64x2_s_zero"),
  f64x2ConvertLowI32x4: simd("f64x2.convert_low_i32x4_s"),
  /** Lane `index` (0 to 3) of the vector as an i32. */
  i32x4ExtractLane: (index: number): Code => simd("i32x4.extract_lane", lane(index, 4)),
  f64x2Ge: simd("f64x2.ge"),
  /** The vector with lane `index` (0 or 1) replaced by the float64 on top of the stack. */
  f64x2ReplaceLane: (index: number): Code => simd("f64x2.replace_lane", lane(index, 2)),
  v128And: simd("v128.and"),
  /** The first vector's bits where the second's are clear. */
  v128Andnot: simd("v128.andnot"),
  /** Lanes of the first vector where the third's bits are set, of the second elsewhere. */
  v128Bitselect: simd("v128.bitselect"),
  i32x4Splat: simd("i32x4.splat"),
  i32x4Eq: simd("i32x4.eq"),
  f32x4Splat: simd("f32x4.splat"),
  f32x4Gt: simd("f32x4.gt"),
  /** `a <= b` per lane: all ones where it holds (never for a NaN). */
  f32x4Le: simd("f32x4.le"),
  f64Abs: one("f64.abs"),
  f64Gt: one("f64.gt"),
  f64Ge: one("f64.ge"),
  f64Floor: one("f64.floor"),
  f64Sub: one("f64.sub"),
  /** A float32 constant. */
  f32: (v: number): Code => [OPCODES["f32.const"], ...new Uint8Array(new Float32Array([v]).buffer)],
  /** A float64 constant. */
  f64: (v: number): Code => [OPCODES["f64.const"], ...new Uint8Array(new Float64Array([v]).buffer)],
};

/** `do { body } while (condition)` (an empty condition: the body leaves it on the stack). */
export const doWhile = (body: Code, condition: Code): Code => [
  ...op.loop,
  ...body,
  ...condition,
  ...op.brIf(0),
  ...op.end,
];

/** A parameter or local of a {@link Func}: made by {@link Func.param} or {@link Func.local}, used by name. */
export interface Local {
  readonly name: string;
  readonly type: ValueType;
  readonly index: number;
  readonly owner: Func;
}

/** A function ready to assemble: its parameter and local types, its body and its export name. */
export interface FunctionDef {
  name: string;
  params: ValueType[];
  locals: ValueType[];
  body: Code;
}

/**
 * One function being written: parameters, then locals, declared by name (in
 * that order: their indices follow it), and the instructions that reach them.
 * Using a local of another function, a name it does not have, or an i32-only
 * helper on another type throws. For example (the tests run more):
 *
 * ```
 * const f = new Func("sum");
 * const [n] = f.params("n");
 * const total = f.local("total", I32);
 * f.build([...f.get(n), ...f.set(total)]);
 * ```
 */
export class Func {
  readonly name: string;
  #locals: Local[] = [];
  #firstLocal = -1;

  constructor(name: string) {
    this.name = name;
  }

  /** A parameter (all of them before the first local). */
  param(name: string, type: ValueType = I32): Local {
    if (this.#firstLocal >= 0) throw new Error(`${this.name}: parameter "${name}" declared after the locals`);
    return this.#declare(name, type);
  }

  /** i32 parameters, in order. */
  params(...names: string[]): Local[] {
    return names.map((n) => this.param(n, I32));
  }

  /** A local of type `type`. */
  local(name: string, type: ValueType): Local {
    if (this.#firstLocal < 0) this.#firstLocal = this.#locals.length;
    return this.#declare(name, type);
  }

  /** Locals of one type, in order. */
  locals(type: ValueType, ...names: string[]): Local[] {
    return names.map((n) => this.local(n, type));
  }

  /** The parameter or local named `name`. */
  named(name: string): Local {
    const found = this.#locals.find((l) => l.name === name);
    if (!found) {
      throw new Error(`${this.name}: no local named "${name}" (it has ${this.#locals.map((l) => l.name).join(", ")})`);
    }
    return found;
  }

  /** `local.get`. */
  get = (local: Local | string): Code => [OPCODES["local.get"], ...uleb(this.#own(local).index)];
  /** `local.set`. */
  set = (local: Local | string): Code => [OPCODES["local.set"], ...uleb(this.#own(local).index)];
  /** `local.tee`. */
  tee = (local: Local | string): Code => [OPCODES["local.tee"], ...uleb(this.#own(local).index)];

  /** `local += by` (an i32 local; `by` leaves an i32). */
  increment = (local: Local | string, by: Code): Code => {
    const l = this.#own(local);
    if (l.type !== I32) {
      throw new TypeError(`${this.name}: increment needs an i32 local, "${l.name}" is ${typeName(l.type)}`);
    }
    return [...this.get(l), ...by, ...op.add, ...this.set(l)];
  };

  /** The function, with `body` (its closing `end` is added when assembled). */
  build(body: Code): FunctionDef {
    const first = this.#firstLocal < 0 ? this.#locals.length : this.#firstLocal;
    return {
      name: this.name,
      params: this.#locals.slice(0, first).map((l) => l.type),
      locals: this.#locals.slice(first).map((l) => l.type),
      body,
    };
  }

  #declare(name: string, type: ValueType): Local {
    if (!TYPE_NAMES.has(type) || (type as number) === TYPES.empty) {
      throw new TypeError(`${this.name}: local "${name}" must have a value type (I32, F64, V128…), got ${type}`);
    }
    if (this.#locals.some((l) => l.name === name)) throw new Error(`${this.name}: local "${name}" declared twice`);
    const local: Local = { name, type, index: this.#locals.length, owner: this };
    this.#locals.push(local);
    return local;
  }

  #own(local: Local | string): Local {
    if (typeof local === "string") return this.named(local);
    if (local.owner !== this) {
      throw new Error(`${this.name}: local "${local.name}" belongs to function ${local.owner.name}`);
    }
    return local;
  }
}

const typeName = (type: number) => TYPE_NAMES.get(type) ?? String(type);

const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
const vector = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
};

/** A function body's local declarations: runs of one type, as (count, type) pairs. */
export function localRuns(locals: ValueType[]): number[] {
  const runs: number[][] = [];
  for (const type of locals) {
    const last = runs[runs.length - 1];
    if (last && last[1] === type) last[0]++;
    else runs.push([1, type]);
  }
  return vector(runs.map(([count, type]) => [...uleb(count), type]));
}

/**
 * A module that imports `env.memory` (shared, `maxPages` at most; or, not
 * `shared`, an unshared memory of any size) and exports `functions`; no
 * function returns a value.
 */
export function assemble(functions: FunctionDef[], maxPages: number, shared = true): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [FORMAT.func, ...vector(f.params.map((t) => [t])), ...vector([])]);
  const memory = shared
    ? [FORMAT.memoryKind, FORMAT.sharedLimits, ...uleb(1), ...uleb(maxPages)]
    : [FORMAT.memoryKind, 0x00, ...uleb(1)];
  const imports = vector([[...name("env"), ...name("memory"), ...memory]]);
  const bodies = functions.map((f) => {
    const body = [...localRuns(f.locals), ...f.body, OPCODES.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    ...FORMAT.magic,
    ...FORMAT.version,
    ...section(SECTIONS.type, vector(types)),
    ...section(SECTIONS.import, imports),
    ...section(SECTIONS.function, vector(functions.map((_, i) => uleb(i)))),
    ...section(SECTIONS.export, vector(functions.map((f, i) => [...name(f.name), FORMAT.funcKind, ...uleb(i)]))),
    ...section(SECTIONS.code, vector(bodies)),
  ]);
}
