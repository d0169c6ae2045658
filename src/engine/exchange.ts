/**
 * Moving float32 values between tfjs tensors and the host engine's arrays at
 * the start and end of a pass. On the wasm backend a tensor's values are read
 * where tfjs keeps them (through `tfjs_private.ts`'s version-checked access;
 * `dataSync` allocated a copy of each) and `tf.tensor` copies the array it is
 * given into the backend's memory at once, so the host's arrays need no copy
 * of their own; the cpu backend keeps the array it is given, so it gets one
 * (the host reuses its arrays' memory after the pass). On Bun, the copies
 * and allocations of a batch-norm MLP's weights and Adam state (~2 MB) cost
 * ~15 ms an epoch's exchange (Deno ~2).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { readsWasmMemory, wasmMemory } from "../internal/tfjs_private.ts";

/** Copies the float32 values of `t` into `target` (its first `t.size` values). */
export function readInto(t: tf.Tensor, target: Float32Array): void {
  const data = wasmMemory(tf.backend(), t.dataId);
  if (data && data.dtype === "float32") {
    target.set(new Float32Array(data.heap.buffer as ArrayBuffer, data.heap.byteOffset + data.offset, t.size));
  } else {
    target.set(t.dataSync() as Float32Array);
  }
}

/** A new float32 tensor of `shape` holding the values of `values` now (later writes to it do not reach it). */
export function tensorOf(values: Float32Array, shape: number[]): tf.Tensor {
  return tf.tensor(readsWasmMemory(tf.backend()) ? values : values.slice(), shape, "float32");
}
