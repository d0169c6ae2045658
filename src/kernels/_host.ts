/**
 * What fitstream's host kernels need of a tfjs backend, and their shared
 * helpers: read an input's values, hand back an output. Private to
 * `src/kernels/`.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/**
 * What a host kernel calls on the wasm or the cpu backend: both read values
 * with `readSync`; the wasm backend makes outputs with `makeOutput(shape,
 * dtype, offset, values)`, the cpu backend with `makeTensorInfo(shape, dtype,
 * values)`.
 */
export interface HostBackend {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values: ArrayLike<number>): tf.TensorInfo;
  makeOutput(...args: unknown[]): unknown;
}

/** What tfjs passes a kernel function. */
export interface KernelArgs<I, A> {
  inputs: I;
  backend: HostBackend;
  attrs: A;
}

/** The values of `t`, as the backend stores them. */
export function valuesOf(backend: HostBackend, t: tf.TensorInfo): ArrayLike<number> {
  return backend.readSync(t.dataId);
}

/** An output of `shape` and `dtype` holding `values`, on either backend. */
export function output(
  backend: HostBackend,
  shape: number[],
  dtype: tf.DataType,
  values: Float32Array | Int32Array,
): tf.TensorInfo {
  if (backend.makeTensorInfo) return backend.makeTensorInfo(shape, dtype, values);
  return backend.makeOutput(shape, dtype, undefined, values) as tf.TensorInfo;
}

/**
 * A float32 output of `shape` holding `sums` rounded once, as the cpu backend
 * rounds its float64 accumulators when it stores them.
 */
export function float32Output(backend: HostBackend, shape: number[], sums: Float64Array): tf.TensorInfo {
  return output(backend, shape, "float32", Float32Array.from(sums));
}
