/**
 * A pass's micro-batches, handed out one at a time so that a trainer can
 * stop after any optimizer step and carry on later (`stepStream`), or run
 * the pass to its end (`epochStream`). Tensors are cut by row position in an
 * order (nothing made until a trainer asks), a dataset's batches are read as
 * they come.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { gatherRows, type HostData, sliceRows } from "../data/tensors.ts";

/** A pass over tensors: micro-batch `i` holds rows `order[i·batchSize …]` (in place without an order). */
export interface RowsFeed {
  kind: "rows";
  order: Int32Array | undefined;
  rows: number;
  batchSize: number;
  /** The first row of the next micro-batch. */
  position: number;
  /** Micro-batches handed out so far. */
  taken: number;
  /** Whether every micro-batch has been handed out (known without reading). */
  readonly done: boolean;
}

/** A pass over a dataset: batches read one at a time; the trainer disposes each. */
export interface TensorFeed {
  kind: "tensors";
  /** The next batch (inputs, then labels), or `undefined` at the end of the pass (and after it). */
  next(): Promise<tf.Tensor[] | undefined>;
  /** Micro-batches handed out so far. */
  readonly taken: number;
  /** Whether the pass is known to be over (the dataset said so). */
  readonly done: boolean;
  /** Frees what was read and not handed out, and stops reading. */
  close(): Promise<void>;
}

/** One pass's micro-batches. Internal. */
export type Feed = RowsFeed | TensorFeed;

/** A pass over `rows` rows in `order`, `batchSize` per micro-batch. Internal. */
export function rowsFeed(rows: number, batchSize: number, order: Int32Array | undefined): RowsFeed {
  return {
    kind: "rows",
    order,
    rows,
    batchSize,
    position: 0,
    taken: 0,
    get done() {
      return this.position >= this.rows;
    },
  };
}

/** Hands out the next micro-batch of a rows feed: its first row and size (0 at the end). Internal. */
export function takeRows(feed: RowsFeed): { start: number; size: number } {
  const start = feed.position;
  const size = Math.max(0, Math.min(feed.batchSize, feed.rows - start));
  feed.position += size;
  if (size > 0) feed.taken++;
  return { start, size };
}

/** A pass over a dataset whose first batch has been read (`first`) and whose others `rest` yields. Internal. */
export function tensorFeed(first: tf.Tensor[], rest: AsyncGenerator<tf.Tensor[]>): TensorFeed {
  let pending: tf.Tensor[] | undefined = first;
  let done = false, taken = 0;
  return {
    kind: "tensors",
    async next() {
      if (pending) {
        const batch = pending;
        pending = undefined;
        taken++;
        return batch;
      }
      if (done) return undefined;
      const r = await rest.next();
      if (r.done) {
        done = true;
        return undefined;
      }
      taken++;
      return r.value;
    },
    get taken() {
      return taken;
    },
    get done() {
      return done;
    },
    async close() {
      if (pending) tf.dispose(pending);
      pending = undefined;
      if (!done) {
        done = true;
        await rest.return(undefined);
      }
    },
  };
}

/**
 * Skips `count` micro-batches (a run resumed in the middle of a pass): rows
 * are skipped by position, a dataset's batches are read and freed. Internal.
 */
export async function skipBatches(feed: Feed, count: number): Promise<void> {
  for (let i = 0; i < count && !feed.done; i++) {
    if (feed.kind === "rows") takeRows(feed);
    else tf.dispose(await feed.next() ?? []);
  }
}

/**
 * Rows `start … start+size-1` of the pass (in `order`) as tensors: from the
 * host copy when there is one (a copy and an upload per tensor), else by
 * gathering or slicing on the backend. The caller owns them. Internal.
 */
export function cutRows(
  data: tf.Tensor[],
  host: HostData | undefined,
  order: Int32Array | undefined,
  start: number,
  size: number,
): tf.Tensor[] {
  if (!host) {
    if (!order) return data.map((t) => sliceRows(t, start, size));
    return tf.tidy(() => {
      const indices = tf.tensor1d(order.subarray(start, start + size), "int32");
      return data.map((t) => tf.gather(t, indices));
    });
  }
  return host.values.map((values, k) => {
    const rowSize = host.rowSizes[k];
    const part = order
      ? gatherRows(values, rowSize, order, start, size)
      : values.subarray(start * rowSize, (start + size) * rowSize);
    return tf.tensor(part, [size, ...host.shapes[k]], host.dtypes[k]);
  });
}
