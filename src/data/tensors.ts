/**
 * Training and validation tensors: the checks shared by `epochStream`,
 * `iterBatches` and `validationLoss`, and the one host copy of the data that
 * batches are cut from.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";

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

/** A typed array of tensor values, as `dataSync()` returns them for float32, int32 and bool. */
export type HostArray = Float32Array | Int32Array | Uint8Array;

/** A copy of the data in JS memory, row-major, for building batches without kernels. Internal. */
export interface HostData {
  values: HostArray[];
  rowSizes: number[];
  shapes: number[][];
  dtypes: tf.DataType[];
}

/**
 * Copies `tensors` to JS memory once (one read per tensor), or returns
 * `undefined` for dtypes that cannot be rebuilt from a typed array (strings).
 * Batches built from this copy cost a memory copy and an upload each, instead
 * of a gather and a slice kernel per tensor (much slower on the wasm backend).
 * Internal.
 */
export function hostCopy(tensors: tf.Tensor[]): HostData | undefined {
  if (tensors.some((t) => t.dtype !== "float32" && t.dtype !== "int32" && t.dtype !== "bool")) return undefined;
  return {
    values: tensors.map((t) => t.dataSync() as HostArray),
    rowSizes: tensors.map((t) => t.size / t.shape[0]),
    shapes: tensors.map((t) => t.shape.slice(1)),
    dtypes: tensors.map((t) => t.dtype),
  };
}

/** Rows of at least this many values are gathered with one copy each. */
const ROW_COPY_MIN = 128;

/** Rows `order[start … start+size-1]` of a row-major copy, in a new array. Internal. */
export function gatherRows(src: HostArray, rowSize: number, order: Int32Array, start: number, size: number): HostArray {
  const out = new (src.constructor as new (n: number) => HostArray)(size * rowSize);
  if (rowSize === 1) {
    for (let i = 0; i < size; i++) out[i] = src[order[start + i]];
  } else if (rowSize >= ROW_COPY_MIN) {
    // A long row moves in one copy: 512 rows of 784 values (the MNIST CNN's batch) took ~0.3 ms so, ~0.8–1.0 value
    // by value (Deno and Bun); rows of 32 values and fewer were faster value by value.
    for (let i = 0; i < size; i++) {
      const from = order[start + i] * rowSize;
      out.set(src.subarray(from, from + rowSize), i * rowSize);
    }
  } else {
    for (let i = 0; i < size; i++) {
      const from = order[start + i] * rowSize, to = i * rowSize;
      for (let c = 0; c < rowSize; c++) out[to + c] = src[from + c];
    }
  }
  return out;
}

/**
 * One pass over `tensors` in batches of `batchSize` rows, in `order` (or in
 * place). With a host copy, each batch is assembled in JS and uploaded;
 * without one, the rows are gathered once on the backend and sliced. Internal.
 */
export function* batchesInOrder(
  tensors: tf.Tensor[],
  rows: number,
  batchSize: number,
  order: Int32Array | undefined,
  host?: HostData,
): Generator<tf.Tensor[]> {
  if (host) {
    for (let start = 0; start < rows; start += batchSize) {
      const size = Math.min(batchSize, rows - start);
      yield host.values.map((values, k) => {
        const rowSize = host.rowSizes[k];
        const part = order
          ? gatherRows(values, rowSize, order, start, size)
          : values.subarray(start * rowSize, (start + size) * rowSize);
        return tf.tensor(part, [size, ...host.shapes[k]], host.dtypes[k]);
      });
    }
    return;
  }
  let ordered = tensors;
  if (order) {
    const indices = tf.tensor1d(order, "int32");
    ordered = tensors.map((t) => tf.gather(t, indices));
    indices.dispose();
  }
  try {
    for (let start = 0; start < rows; start += batchSize) {
      const size = Math.min(batchSize, rows - start);
      yield ordered.map((t) => sliceRows(t, start, size));
    }
  } finally {
    if (ordered !== tensors) tf.dispose(ordered);
  }
}
