/**
 * tfjs's own kernels that fitstream replaced, kept when it replaces them:
 * `register.ts` puts them back on opt-out, and a replacement that hands small
 * jobs back to tfjs calls them through {@link tfjsKernel}. Private to
 * `src/kernels/`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

const originals = new Map<string, tf.KernelConfig>();
/** fitstream's own kernel functions: {@link tfjsKernel} never calls one of them as tfjs's. */
const ours = new WeakSet<tf.KernelFunc>();

/** Marks `run` as one of fitstream's kernels. */
export function markOurs(run: tf.KernelFunc): void {
  ours.add(run);
}

/** Keeps tfjs's own `config` (the first one seen for its name and backend). */
export function keepOriginal(config: tf.KernelConfig): void {
  const key = `${config.backendName}/${config.kernelName}`;
  if (!originals.has(key)) originals.set(key, config);
}

/** tfjs's own kernel `name` on `backend`, as registered before fitstream replaced it. */
export function originalKernel(name: string, backend: string): tf.KernelConfig | undefined {
  return originals.get(`${backend}/${name}`);
}

/**
 * Runs tfjs's own kernel `name` on `backend` (the one fitstream replaced, or
 * the registered one where it replaced none) with the arguments tfjs passed.
 */
export function tfjsKernel(name: string, backend: string, args: unknown): tf.TensorInfo | tf.TensorInfo[] {
  const config = originalKernel(name, backend) ?? tf.getKernel(name, backend);
  if (config === undefined || ours.has(config.kernelFunc)) {
    throw new Error(`fitstream: tfjs's own ${name} kernel for ${backend} was not kept`);
  }
  return config.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
}
