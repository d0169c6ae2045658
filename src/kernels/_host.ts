/**
 * What fitstream's host kernels need of a tfjs backend, and their shared
 * helpers: read an input's values, hand back an output. Private to
 * `src/kernels/`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { readsWasmMemory, wasmMemory } from "../internal/tfjs_private.ts";

/**
 * What a host kernel calls on the wasm or the cpu backend: `readSync` (the
 * cpu backend's values; {@link valuesOf} reads the wasm heap in place), and
 * to make an output the wasm backend's `makeOutput(shape, dtype, offset,
 * values)` or the cpu backend's `makeTensorInfo(shape, dtype, values)`;
 * `disposeData` and `incRef` are every tfjs backend's public methods.
 */
export interface HostBackend {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values: ArrayLike<number>): tf.TensorInfo;
  makeOutput?(...args: unknown[]): unknown;
  disposeData?(dataId: object): unknown;
  incRef?(dataId: object): void;
}

/** What tfjs passes a kernel function. */
export interface KernelArgs<I, A> {
  inputs: I;
  backend: HostBackend;
  attrs: A;
}

/**
 * The values of `t`, as the backend stores them. On the wasm backend, a view
 * of its heap, not a copy (`readSync` copied 9.4 MB of the MNIST CNN's
 * activations per call): valid until the heap grows, so a kernel reads its
 * inputs through it before it makes its output. (Its memory is tfjs's private
 * state: on an unknown tfjs-backend-wasm, a copy through `readSync`.)
 */
export function valuesOf(backend: HostBackend, t: tf.TensorInfo): ArrayLike<number> {
  const data = wasmMemory(backend, t.dataId);
  if (data && (data.dtype === "float32" || data.dtype === "int32")) {
    const size = tf.util.sizeFromShape(t.shape);
    const Kind = data.dtype === "float32" ? Float32Array : Int32Array;
    return new Kind(data.heap.buffer as ArrayBuffer, data.heap.byteOffset + data.offset, size);
  }
  return backend.readSync(t.dataId);
}

/** The typed array that stores `dtype` (the backends copy an output's bytes as they are). */
const STORAGE: Partial<Record<tf.DataType, new (values: ArrayLike<number>) => ArrayLike<number>>> = {
  float32: Float32Array,
  int32: Int32Array,
  bool: Uint8Array,
};

/** An output of `shape` and `dtype` holding `values` (converted to `dtype`'s storage), on either backend. */
export function output(
  backend: HostBackend,
  shape: number[],
  dtype: tf.DataType,
  values: Float32Array | Int32Array | Uint8Array,
): tf.TensorInfo {
  const Storage = STORAGE[dtype];
  if (Storage === undefined) throw new TypeError(`fitstream: a host kernel cannot make a ${dtype} output`);
  const stored = values instanceof Storage ? values : new Storage(values);
  if (backend.makeTensorInfo) return backend.makeTensorInfo(shape, dtype, stored);
  return backend.makeOutput!(shape, dtype, undefined, stored) as tf.TensorInfo;
}

/**
 * A float32 output of `shape` holding `sums` rounded once, as the cpu backend
 * rounds its float64 accumulators when it stores them.
 */
export function float32Output(backend: HostBackend, shape: number[], sums: Float64Array): tf.TensorInfo {
  return output(backend, shape, "float32", new Float32Array(sums)); // not Float32Array.from: it iterates
}

/**
 * A float32 output of `shape` whose values `fill` writes (every one of them:
 * they start as garbage), given the values of `inputs`. On the wasm backend
 * `fill` writes the output where it lives in the heap (no JS array, and no
 * copy of it into the heap: 9.4 MB for the MNIST CNN's activations); the
 * inputs are read after the output is allocated, since an allocation may
 * grow the heap and leave earlier views of it empty.
 */
export function writeOutput(
  backend: HostBackend,
  shape: number[],
  inputs: tf.TensorInfo[],
  fill: (out: Float32Array, ...values: ArrayLike<number>[]) => void,
): tf.TensorInfo {
  if (readsWasmMemory(backend) && backend.makeOutput) {
    const info = backend.makeOutput(shape, "float32") as tf.TensorInfo;
    const out = valuesOf(backend, info);
    if (out instanceof Float32Array) {
      fill(out, ...inputs.map((t) => valuesOf(backend, t)));
      return info;
    }
    backend.disposeData?.(info.dataId);
  }
  const out = new Float32Array(tf.util.sizeFromShape(shape));
  fill(out, ...inputs.map((t) => valuesOf(backend, t)));
  return output(backend, shape, "float32", out);
}
