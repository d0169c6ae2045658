/**
 * `Identity` that shares its input's memory on the wasm backend, as
 * tfjs-backend-wasm's own `Reshape` does (and the cpu backend's `Identity`):
 * the backend counts the references and frees the memory with the last.
 * tfjs-backend-wasm 4.22's `Identity` copied: 33 calls a step of the MNIST
 * CNN, several of them its 9.4 MB activations (~2.5 ms of CPU a step). Tensors
 * never change in place, so a shared copy reads the same. Strings stay on
 * tfjs's kernel.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { KernelArgs } from "./_host.ts";
import { tfjsKernel } from "./_originals.ts";

/** Whether identities share memory; off only to measure against tfjs's copy (bench/profile_cnn.ts). */
export const sharedIdentities = { on: true };

type IdentityArgs = KernelArgs<{ x: tf.TensorInfo }, Record<string, never>>;

/** `x` itself, under a new tensor. */
export function identity(args: IdentityArgs): tf.TensorInfo {
  const { inputs: { x }, backend } = args;
  if (!sharedIdentities.on || x.dtype === "string" || typeof backend.incRef !== "function") {
    return tfjsKernel("Identity", "wasm", args) as tf.TensorInfo;
  }
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}
