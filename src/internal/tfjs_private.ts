/**
 * Every read (and write) of tfjs's private state, in one place: the gradient
 * tape, tfjs-layers' class map and a layer's inbound nodes and regularizers,
 * a Sequential's inner model, an optimizer's fields, slots and learning rate, the wasm
 * backend's memory, the cpu backend's first-use flag.
 *
 * This state has no contract: tfjs may rename or reshape any of it in any
 * release. Each accessor answers only for the versions it was written
 * against ({@link KNOWN_TFJS}, read from `tf.version_core` and
 * `tf.version_layers` at run time; the wasm backend's from
 * `version_wasm`) and answers `undefined` (unsupported) for any other, so
 * its caller goes on with plain tfjs: the tfjs path instead of the host
 * engine, tfjs's own kernels instead of fitstream's, a copy through
 * `readSync` instead of a view of the wasm heap. {@link unknownTfjs} says
 * why, in `explainEngine`'s words.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The tfjs release whose private state this module reads (tfjs-core, tfjs-layers, tfjs-backend-wasm). */
export const KNOWN_TFJS = "4.22.0";

/** A class, as the registries hold it. */
// deno-lint-ignore no-explicit-any
export type Constructor = abstract new (...args: any[]) => object;

/** The version the module believes is loaded, when a test says so instead of tfjs. */
let reportedVersion: string | undefined;

/**
 * Makes the module believe tfjs `version` is loaded (both tfjs-core and
 * tfjs-layers), or, with `undefined`, read tfjs again. Internal: for tests
 * of the fallback to plain tfjs.
 */
export function reportTfjsVersionForTests(version: string | undefined): void {
  reportedVersion = version;
}

/** The loaded tfjs-core and tfjs-layers versions, as one string when they differ. */
function loadedVersion(): string {
  if (reportedVersion !== undefined) return reportedVersion;
  const core = String(tf.version_core), layers = String(tf.version_layers);
  return core === layers ? core : `${core} (tfjs-layers ${layers})`;
}

/** Whether tfjs itself is the known version (read once: a kernel asks on every call). */
const tfjsIsKnown = loadedVersion() === KNOWN_TFJS;

/** Whether the loaded tfjs is the one this module knows. */
export function knowsTfjs(): boolean {
  return reportedVersion === undefined ? tfjsIsKnown : reportedVersion === KNOWN_TFJS;
}

/**
 * `undefined` when the loaded tfjs is known; otherwise why fitstream's host
 * engine steps aside (`explainEngine`'s reason).
 */
export function unknownTfjs(): string | undefined {
  if (knowsTfjs()) return undefined;
  return `tfjs ${loadedVersion()} is not a version fitstream's host engine knows (it reads tfjs ${KNOWN_TFJS}'s ` +
    `internals): training goes through plain tfjs`;
}

// ---------------------------------------------------------------- tfjs-core: the gradient tape

interface TapeState {
  gradientDepth: number;
  activeTape?: { saved?: tf.Tensor[] }[];
}

/**
 * After a gradient computation threw at the outermost level: frees the
 * tensors tfjs's tape saved for the backward pass and empties the tape (tfjs
 * would hold them until the next gradient computation). Does nothing on an
 * unknown tfjs (they are then held until then, as in plain tfjs).
 */
export function freeTapeAfterThrow(): void {
  if (!knowsTfjs()) return;
  const state = (tf.engine() as unknown as { state?: TapeState }).state;
  if (state && state.gradientDepth === 0 && state.activeTape) {
    for (const node of state.activeTape) tf.dispose(node.saved ?? []);
    state.activeTape = [];
  }
}

// ---------------------------------------------------------------- tfjs-layers

/**
 * The model a Sequential wraps (whose `calculateLosses` is the one
 * `model.fit` calls), or `undefined` on an unknown tfjs or when there is
 * none.
 */
export function sequentialInner(model: tf.Sequential): tf.LayersModel | undefined {
  if (!knowsTfjs()) return undefined;
  const inner = (model as unknown as { model?: unknown }).model;
  return inner instanceof tf.LayersModel ? inner : undefined;
}

/** A class registered with tfjs's serialization by `name` (Dense and L1L2 are not exported by name). */
export function registeredClass(name: string): Constructor | undefined {
  if (!knowsTfjs()) return undefined;
  const map = (tf.serialization.SerializationMap.getMap() as unknown as {
    classNameMap?: Record<string, [Constructor, unknown]>;
  }).classNameMap;
  return map?.[name]?.[0];
}

/**
 * A layer's private fields, as the caller's type `T` names them (tfjs 4.22's
 * `inboundNodes`, `kernelRegularizer`, a dropout's `rate` and `seed`, …), or
 * `undefined` on an unknown tfjs. Every field is optional in `T`: tfjs sets
 * some only when a layer is built or configured so.
 */
export function layerFields<T extends object>(layer: tf.layers.Layer): T | undefined {
  return knowsTfjs() ? layer as unknown as T : undefined;
}

// ---------------------------------------------------------------- tfjs-core: optimizers

/** One optimizer slot: tfjs's `{ originalName, variable }`. */
export interface Slot {
  originalName: string;
  variable: tf.Variable;
}

/** One optimizer's slot array (indexed like the variables passed to `minimize`; holes where none was made yet). */
export type Slots = (Slot | undefined)[];

/** The fields of tfjs 4.22's SGD, Momentum and Adam optimizers that the host engine reads and writes. */
export interface OptimizerInternals {
  iterations_?: number;
  c?: tf.Scalar;
  m?: tf.Scalar;
  useNesterov?: boolean;
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
  accumulations?: Slots;
  accumulatedFirstMoment?: Slots;
  accumulatedSecondMoment?: Slots;
}

/**
 * The optimizer's private fields, as the caller's type `T` names them (by
 * default the ones above; a rule for another optimizer names its own), or
 * `undefined` on an unknown tfjs.
 */
export function optimizerInternals<T extends object = OptimizerInternals>(optimizer: tf.Optimizer): T | undefined {
  return knowsTfjs() ? optimizer as unknown as T : undefined;
}

function isSlot(value: unknown): value is Slot {
  return typeof value === "object" && value !== null && typeof (value as Slot).originalName === "string" &&
    (value as Slot).variable instanceof tf.Variable;
}

/**
 * The optimizer's arrays of per-variable slots, by field (Adam's moments,
 * Momentum's accumulations, …; empty arrays too, a fresh optimizer's), or
 * `undefined` on an unknown tfjs.
 */
export function optimizerSlots(optimizer: tf.Optimizer): [string, Slots][] | undefined {
  if (!knowsTfjs()) return undefined;
  return Object.entries(optimizer).filter(([, value]) =>
    Array.isArray(value) && value.every((s) => s === undefined || s === null || isSlot(s))
  ) as [string, Slots][];
}

/** Replaces the optimizer's slot array `field` (a field {@link optimizerSlots} named). */
export function setOptimizerSlots(optimizer: tf.Optimizer, field: string, slots: Slots): void {
  (optimizer as unknown as Record<string, unknown>)[field] = slots;
}

/** The optimizer's own scalar variables by field (Adam's `accBeta1`, `accBeta2`), or `undefined` on an unknown tfjs. */
export function optimizerVariables(optimizer: tf.Optimizer): [string, tf.Variable][] | undefined {
  if (!knowsTfjs()) return undefined;
  return Object.entries(optimizer).filter(([, v]) => v instanceof tf.Variable) as [string, tf.Variable][];
}

/**
 * The optimizer's learning rate: the `learningRate` field every tfjs 4.22
 * optimizer reads at each step (SGD and Momentum: at `setLearningRate`); on
 * an unknown tfjs, what its public `getConfig()` says.
 */
export function learningRateOf(optimizer: tf.Optimizer): unknown {
  if (knowsTfjs()) return (optimizer as unknown as { learningRate?: unknown }).learningRate;
  try {
    return optimizer.getConfig().learningRate;
  } catch {
    return undefined;
  }
}

/**
 * Sets the optimizer's learning rate for its next step: through its public
 * `setLearningRate` where it has one (tfjs's SGD and Momentum, which cache
 * `-lr` in a tensor), else on tfjs 4.22 by writing the field the others
 * read at every step. `false` when neither applies (another optimizer on an
 * unknown tfjs).
 */
export function setLearningRateOf(optimizer: tf.Optimizer, lr: number): boolean {
  const o = optimizer as unknown as { learningRate?: unknown; setLearningRate?: unknown };
  if (typeof o.setLearningRate === "function") {
    o.setLearningRate(lr);
    return true;
  }
  if (!knowsTfjs()) return false;
  o.learningRate = lr;
  return true;
}

// ---------------------------------------------------------------- backends

/** The tfjs-backend-wasm version loaded, once `useBackend` has imported it. */
let wasmVersion: string | undefined;

/** Records the version of tfjs-backend-wasm that was loaded. Internal. */
export function noteWasmVersion(version: string): void {
  wasmVersion = version;
}

/** Where the wasm backend keeps a tensor: its heap, the byte offset and the dtype. */
export interface WasmMemory {
  heap: Uint8Array;
  offset: number;
  dtype: string;
}

/** The wasm backend's private state that {@link wasmMemory} reads. */
interface WasmInternals {
  dataIdMap?: { get(dataId: object): { memoryOffset: number; dtype: string } | undefined };
  wasm?: { HEAPU8: Uint8Array; asm?: { memory?: unknown } };
}

/**
 * The wasm backend's `WebAssembly.Memory` (its heap), for a module of
 * fitstream's to import and work in place; `undefined` where it cannot be
 * read or is shared between threads.
 */
export function wasmHeapMemory(backend: object): WebAssembly.Memory | undefined {
  if (!readsWasmMemory(backend)) return undefined;
  const memory = (backend as WasmInternals).wasm!.asm?.memory;
  return memory instanceof WebAssembly.Memory && memory.buffer instanceof ArrayBuffer ? memory : undefined;
}

/**
 * Whether {@link wasmMemory} can read `backend`'s memory: the wasm backend of
 * the known tfjs and tfjs-backend-wasm.
 */
export function readsWasmMemory(backend: object): boolean {
  if (wasmVersion !== KNOWN_TFJS || !knowsTfjs()) return false;
  const internals = backend as WasmInternals;
  return internals.dataIdMap !== undefined && internals.wasm?.HEAPU8 !== undefined;
}

/**
 * Where the wasm backend keeps `dataId`'s values, or `undefined` on another
 * backend, an unknown tfjs or tfjs-backend-wasm, or data it does not hold.
 */
export function wasmMemory(backend: object, dataId: object): WasmMemory | undefined {
  if (!readsWasmMemory(backend)) return undefined;
  const internals = backend as WasmInternals;
  const data = internals.dataIdMap!.get(dataId);
  const heap = internals.wasm!.HEAPU8;
  return data ? { heap, offset: data.memoryOffset, dtype: data.dtype } : undefined;
}

/**
 * Keeps the cpu backend from printing its advice for Node (it does not
 * apply to Deno or Bun). Nothing on an unknown tfjs: the advice is printed.
 */
export function quietCpuBackend(backend: object): void {
  if (knowsTfjs()) (backend as { firstUse?: boolean }).firstUse = false;
}
