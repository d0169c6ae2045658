/**
 * Checks on training and validation tensors, shared by `epochStream`,
 * `iterBatches` and `validationLoss`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import type { HostData } from "./iter_batches.ts";

/** Validates `data` and returns its row count. Internal. */
export function checkTensors(where: string, name: string, data: unknown, minTensors: number): number {
  if (!Array.isArray(data)) {
    throw new TypeError(`${where}: ${name} must be an array of tf.Tensor, got ${describe(data)}`);
  }
  if (data.length < minTensors) {
    throw new TypeError(
      minTensors === 1
        ? `${where}: ${name} is empty: pass at least one tensor`
        : `${where}: ${name} must hold at least ${minTensors} tensors (inputs and labels) with lastLabel, got ${data.length}`,
    );
  }
  data.forEach((t, i) => {
    if (!(t instanceof tf.Tensor)) {
      throw new TypeError(`${where}: ${name}[${i}] must be a tf.Tensor, got ${describe(t)}`);
    }
    if (t.isDisposed) throw new TypeError(`${where}: ${name}[${i}] has been disposed`);
    if (t.rank === 0) throw new TypeError(`${where}: ${name}[${i}] is a scalar; rows go along the first dimension`);
  });
  const tensors = data as tf.Tensor[];
  const rows = tensors[0].shape[0];
  tensors.forEach((t, i) => {
    if (t.shape[0] !== rows) {
      throw new RangeError(
        `${where}: all tensors in ${name} must share their first dimension: ${name}[0] has ${rows} rows, ` +
          `${name}[${i}] has ${t.shape[0]}`,
      );
    }
  });
  if (rows === 0) throw new RangeError(`${where}: ${name} is empty: its tensors have 0 rows`);
  return rows;
}

/**
 * Throws a `RangeError` if any float tensor holds NaN or ±Infinity, naming the
 * first row. With the data's host copy it scans that (no extra read). Internal.
 */
export function checkFinite(where: string, name: string, data: tf.Tensor[], host?: HostData): void {
  data.forEach((t, i) => {
    if (t.dtype !== "float32") return;
    const bad = host ? firstBadRow(host.values[i], host.rowSizes[i]) : tf.tidy(() => {
      const rowBad = tf.logicalNot(tf.isFinite(t.reshape([t.shape[0], -1]))).any(1);
      return rowBad.any().dataSync()[0] ? tf.argMax(rowBad.cast("int32")).dataSync()[0] : -1;
    });
    if (bad >= 0) {
      throw new RangeError(`${where}: ${name}[${i}] contains NaN or Infinity (first at row ${bad})`);
    }
  });
}

/** The first row of a row-major copy holding NaN or ±Infinity, or -1. */
function firstBadRow(values: ArrayLike<number>, rowSize: number): number {
  for (let k = 0; k < values.length; k++) if (!Number.isFinite(values[k])) return Math.floor(k / rowSize);
  return -1;
}

/** Rows `start … start+size-1` of `t`. Internal. */
export function sliceRows(t: tf.Tensor, start: number, size: number): tf.Tensor {
  const begin = new Array<number>(t.rank).fill(0);
  const extent = new Array<number>(t.rank).fill(-1);
  begin[0] = start;
  extent[0] = size;
  return tf.slice(t, begin, extent);
}
