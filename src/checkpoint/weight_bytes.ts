/**
 * Weight files as bytes: tfjs's weight data joined into one buffer for
 * writing, and the size the weight specs describe, to check a file read back
 * before tfjs decodes it (tfjs would read past a short file's end as zeros
 * or fail with an error naming no file). Shared by checkpoints and the
 * `file://` model files.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** tfjs's weight data (one buffer or several) as one byte array; empty when there is none. Internal. */
export function weightBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/** The bytes of `data` as an `ArrayBuffer` of their own (a Node `Buffer` may share a larger pool). Internal. */
export function ownBuffer(data: Uint8Array): ArrayBuffer {
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** The bytes `specs` describe, or `undefined` if a spec is not one we can size (quantized, strings). Internal. */
export function specBytes(specs: tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const size = BYTES_PER_ELEMENT[spec.dtype];
    if (size === undefined || spec.quantization || !Array.isArray(spec.shape)) return undefined;
    total += size * spec.shape.reduce((a, b) => a * b, 1);
  }
  return total;
}
