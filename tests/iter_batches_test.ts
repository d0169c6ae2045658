import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { iterBatches } from "../mod.ts";
import "./tf_helpers.ts";

function rowsOf(batches: Iterable<tf.Tensor[]>): number[][][] {
  const out: number[][][] = [];
  for (const batch of batches) {
    out.push(batch.map((t) => Array.from(t.dataSync())));
    tf.dispose(batch);
  }
  return out;
}

test("iterBatches: batches in order without shuffle; the last may be smaller", () => {
  const x = tf.tensor2d([[0], [1], [2], [3], [4]]);
  const y = tf.tensor1d([10, 11, 12, 13, 14]);
  assert.deepEqual(rowsOf(iterBatches([x, y], { batchSize: 2, shuffle: false })), [
    [[0, 1], [10, 11]],
    [[2, 3], [12, 13]],
    [[4], [14]],
  ]);
  tf.dispose([x, y]);
});

test("iterBatches: shuffle visits every row once, keeps rows aligned, and is seeded", () => {
  const before = tf.memory().numTensors;
  const x = tf.tidy(() => tf.range(0, 23).reshape([23, 1]));
  const y = tf.tidy(() => tf.range(0, 23).mul(10));
  const a = rowsOf(iterBatches([x, y], { batchSize: 4, seed: 3 }));
  const b = rowsOf(iterBatches([x, y], { batchSize: 4, seed: 3 }));
  const c = rowsOf(iterBatches([x, y], { batchSize: 4, seed: 4 }));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const seen = a.flatMap(([xs]) => xs).sort((p, q) => p - q);
  assert.deepEqual(seen, Array.from({ length: 23 }, (_, i) => i));
  for (const [xs, ys] of a) assert.deepEqual(ys, xs.map((v) => v * 10));
  const iterable = iterBatches([x, y], { batchSize: 4, seed: 3 });
  const firstPass = rowsOf(iterable);
  assert.deepEqual(firstPass, a, "the first pass of a seeded iterable is the seed's order");
  assert.notDeepEqual(rowsOf(iterable), firstPass, "a second pass draws a new order");
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before);
});

test("iterBatches: shuffled rows of many values (images) arrive whole and aligned with their labels", () => {
  // Rows of 28 × 28 values are copied row by row, short rows value by value (src/data/tensors.ts): both agree.
  const x = tf.tidy(() => tf.range(0, 9 * 784).reshape([9, 28, 28, 1]));
  const y = tf.tidy(() => tf.range(0, 9));
  for (const [xb, yb] of iterBatches([x, y], { batchSize: 4, seed: 5 })) {
    const images = xb.arraySync() as number[][][][], labels = yb.arraySync() as number[];
    assert.deepEqual(xb.shape.slice(1), [28, 28, 1]);
    labels.forEach((label, i) => {
      const flat = images[i].flat(2);
      assert.deepEqual(flat, Array.from({ length: 784 }, (_, k) => label * 784 + k));
    });
    tf.dispose([xb, yb]);
  }
  tf.dispose([x, y]);
});

test("iterBatches: breaking out early frees the shuffled copy", () => {
  const x = tf.tidy(() => tf.range(0, 10).reshape([10, 1]));
  const before = tf.memory().numTensors;
  for (const batch of iterBatches([x], { batchSize: 3 })) {
    tf.dispose(batch);
    break;
  }
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

test("iterBatches: errors", () => {
  const x = tf.zeros([4, 1]);
  assert.throws(() => iterBatches([x], { batchSize: 0 }), {
    name: "RangeError",
    message: /iterBatches: batchSize must be an integer >= 1/,
  });
  assert.throws(() => iterBatches([]), { name: "TypeError", message: /iterBatches: tensors is empty/ });
  assert.throws(() => iterBatches([x, tf.zeros([3])]), { name: "RangeError", message: /first dimension/ });
  x.dispose();
});

test("iterBatches: int32 and bool tensors keep their dtype and rows; string tensors take the backend path", () => {
  const ids = tf.tensor1d([10, 11, 12, 13], "int32");
  const flags = tf.tensor2d([[true, false], [false, true], [true, true], [false, false]], [4, 2], "bool");
  const rows = [...iterBatches([ids, flags], { batchSize: 3, seed: 9 })];
  assert.deepEqual(rows.map((b) => b.map((t) => t.dtype)), [["int32", "bool"], ["int32", "bool"]]);
  const seenIds = rows.flatMap(([i]) => Array.from(i.dataSync())).sort();
  assert.deepEqual(seenIds, [10, 11, 12, 13]);
  const table: Record<number, number[]> = { 10: [1, 0], 11: [0, 1], 12: [1, 1], 13: [0, 0] };
  for (const [i, f] of rows) {
    const idv = Array.from(i.dataSync()), fv = Array.from(f.dataSync());
    idv.forEach((id, r) => assert.deepEqual(fv.slice(2 * r, 2 * r + 2), table[id]));
  }
  rows.forEach((b) => tf.dispose(b));
  const names = tf.tensor1d(["a", "b", "c"], "string");
  const batches = [...iterBatches([names], { batchSize: 2, shuffle: false })];
  assert.deepEqual(batches.map(([t]) => t.arraySync()), [["a", "b"], ["c"]]);
  batches.forEach((b) => tf.dispose(b));
  tf.dispose([ids, flags, names]);
});
