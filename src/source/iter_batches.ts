/**
 * `iterBatches(tensors, { batchSize, shuffle, seed })`: mini-batches for your own loop.
 *
 * @module
 */
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { requireInteger, requireOptions } from "../internal/validate.ts";
import { batchesInOrder, checkTensors, hostCopy, type HostData } from "../data/tensors.ts";
import { createRandom, permutation, type Random } from "../data/random.ts";
import type { Tensor } from "../tf_types.ts";

/** Options of {@link iterBatches}. */
export interface IterBatchesOptions {
  /** Rows per batch (positive integer, default 1); the last batch may be smaller. */
  batchSize?: number;
  /** Visit rows in a random order (default `true`). */
  shuffle?: boolean;
  /** Seed of the shuffle: the same seed gives the same order. */
  seed?: number;
}

const OPTION_KEYS = keysOf<IterBatchesOptions>({ batchSize: true, shuffle: true, seed: true });

/** Validated batching settings. Internal. */
export interface BatchPlan {
  rows: number;
  batchSize: number;
  shuffle: boolean;
}

/** Checks `batchSize`, `shuffle` and `seed`. Internal. */
export function checkBatchOptions(
  where: string,
  options: { batchSize?: unknown; shuffle?: unknown; seed?: unknown },
): void {
  requireInteger(where, "batchSize", options.batchSize ?? 1, 1);
  if (options.shuffle !== undefined && typeof options.shuffle !== "boolean") {
    throw new TypeError(`${where}: shuffle must be a boolean, got ${describe(options.shuffle)}`);
  }
  if (options.seed !== undefined) {
    const s = options.seed;
    if (typeof s !== "number" || !Number.isInteger(s) || s < 0 || s >= 2 ** 32) {
      throw new RangeError(`${where}: seed must be an integer in [0, 2^32), got ${describe(s)}`);
    }
  }
}

/** One pass over `tensors` in batches, shuffled with one permutation per pass. Internal. */
export function batchesOf(
  tensors: Tensor[],
  plan: BatchPlan,
  random: Random,
  host?: HostData,
): Generator<Tensor[]> {
  const order = plan.shuffle ? permutation(plan.rows, random) : undefined;
  return batchesInOrder(tensors, plan.rows, plan.batchSize, order, host);
}

/**
 * Splits tensors that share their first dimension into mini-batches, for
 * users who write their own training loop. Each yielded array holds one
 * batch per input tensor; the caller owns those tensors (dispose them, or
 * wrap the loop body in `tf.tidy`). With `shuffle`, each pass over the
 * result draws a fresh order; the same `seed` gives the same sequence of orders.
 *
 * @example Batches of three rows: the last one holds the rest
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { iterBatches } from "@fitstream/fitstream";
 *
 * const x = tf.tensor2d([[1], [2], [3], [4]]);
 * const sizes: number[] = [];
 * for (const [xb] of iterBatches([x], { batchSize: 3, shuffle: false })) {
 *   sizes.push(xb.shape[0]);
 *   xb.dispose();
 * }
 * console.log(sizes); // [3, 1]
 * x.dispose();
 * ```
 */
export function iterBatches(tensors: Tensor[], options: IterBatchesOptions = {}): Iterable<Tensor[]> {
  requireOptions("iterBatches", options);
  checkKeys("iterBatches", options, OPTION_KEYS);
  const rows = checkTensors("iterBatches", "tensors", tensors, 1);
  checkBatchOptions("iterBatches", options);
  const plan = { rows, batchSize: options.batchSize ?? 1, shuffle: options.shuffle ?? true };
  const random = createRandom(options.seed); // iterating again continues the sequence: a new order
  const host = hostCopy(tensors);
  return {
    [Symbol.iterator]: () => batchesOf(tensors, plan, random, host),
  };
}
