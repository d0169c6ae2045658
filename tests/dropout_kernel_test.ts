// The dropout kind's kernel (src/kernels/simd/dropout.ts) gives what the kind's JS loops give, bit for bit — the
// draws tf.randomUniform makes, the masks and the masked outputs — for odd and even counts, one value, rates from
// tiny to large, seeded and unseeded layers and NaN, infinite and signed-zero inputs; and the kind runs it when its
// arrays lie in the kernels' memory, and its JS loops otherwise.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "./tf_helpers.ts";
import { dropoutKind, keptFrom } from "../src/engine/layers/dropout.ts";
import type { PlannedLayer } from "../src/engine/layers/kind.ts";
import { aleaState, drawUniform } from "../src/engine/layers/uniform_draws.ts";
import { type SimdKernels, simdKernels } from "../src/kernels/simd/products.ts";
import { createRandom } from "../src/data/random.ts";

const simd = simdKernels()!;

/** `count` inputs: random values with NaN, ±Infinity, ±0 and a subnormal among them. */
function inputs(count: number, seed: number): Float64Array {
  const random = createRandom(seed), special = [NaN, Infinity, -Infinity, 0, -0, 1e-310, -5];
  return Float64Array.from(
    { length: count },
    (_, i) => i % 11 === 3 ? special[i % special.length] : random.next() - 0.5,
  );
}

/**
 * The bits of each value, so −0 differs from 0 — and "NaN" for a NaN: a NaN's sign and payload are not the
 * arithmetic's (a multiply by 0 gives x86's negative NaN in WebAssembly; JavaScriptCore may store another).
 */
const bits = (a: Float64Array) =>
  Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length), (b, i) => Number.isNaN(a[i]) ? "NaN" : b);

test("the dropout kernel's masks and outputs are the JS loops', bit for bit, from tf.randomUniform's draws", () => {
  for (const count of [1, 2, 7, 1000, 65_537]) {
    for (const [rate, seed] of [[0.2, 1], [0.5, 42], [0.9, 7], [1e-6, 3], [0.999, 11]] as const) {
      const keep = Math.fround(1 - rate), scale = Math.fround(1 / keep), kept = keptFrom(keep)!;
      // The JS loops (dropout.ts): the numbers, then the mask and the output.
      const draws = new Float32Array(count), x = inputs(count, count + seed);
      drawUniform(draws, count, seed);
      const mask = Float64Array.from(draws, (u) => u >= kept ? scale : 0), out = x.map((v, i) => v * mask[i]);
      // The kernel, on copies in its memory, with garbage where it writes.
      const [xs, outs, masks] = [simd.float64(count)!, simd.float64(count)!.fill(9), simd.float64(count)!.fill(9)];
      xs.set(x);
      assert.ok(simd.dropout(xs, outs, masks, count, () => aleaState(seed), kept, scale), `${count} values`);
      assert.deepEqual(bits(masks), bits(mask), `masks: ${count} values, rate ${rate}`);
      assert.deepEqual(bits(outs), bits(out), `outputs: ${count} values, rate ${rate}`);
      assert.ok(mask.includes(0) || count < 100 || rate < 0.01, "some units dropped");
      [xs, outs, masks].forEach((a) => simd.free(a));
    }
  }
});

test("the dropout kernel refuses arrays outside its memory or shorter than the count, and writes nothing then", () => {
  const inMemory = simd.float64(8)!, plain = new Float64Array(8);
  let asked = 0;
  const state = () => (asked++, aleaState(1)), kept = keptFrom(0.5)!;
  assert.equal(simd.dropout(plain, inMemory, inMemory, 8, state, kept, 2), false);
  assert.equal(simd.dropout(inMemory, inMemory, inMemory, 9, state, kept, 2), false);
  assert.equal(simd.dropout(inMemory, inMemory, inMemory, 0, state, kept, 2), false);
  assert.ok(inMemory.every((v) => v === 0));
  assert.equal(asked, 0, "no state asked for (an unseeded layer draws Math.random for it)");
  simd.free(inMemory);
});

/** The planned Dropout layer of `rate` (and `seed`) over rows of `width`. */
function plan(rate: number, width: number, seed?: number): PlannedLayer {
  const layer = tf.layers.dropout({ rate, seed });
  const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [width] }), layer] });
  const planned = dropoutKind.plan({
    layer,
    config: layer.getConfig(),
    input: [width],
    first: false,
    last: false,
    penalty: () => undefined,
  }) as PlannedLayer;
  model.dispose();
  return planned;
}

/** One training forward and backward pass through the kind, on arrays in the kernels' memory or plain ones. */
function pass(planned: PlannedLayer, x: Float64Array, n: number, shared: boolean) {
  const held: Float64Array[] = [];
  const f64 = (length: number) => {
    const a = shared ? simd.float64(length)! : new Float64Array(length);
    if (shared) held.push(a);
    return a.fill(3);
  };
  const size = x.length, arrays = { x: f64(size), output: f64(size), mask: f64(size), dy: f64(size), dx: f64(size) };
  arrays.x.set(x);
  arrays.dy.set(x.map((v, i) => i - v));
  let calls = 0;
  const k = simd as Partial<Pick<SimdKernels, "dropout">>, kernel = simd.dropout;
  k.dropout = (...args) => kernel.apply(simd, args) && ++calls > 0;
  try {
    const forward = { n, training: true, input: arrays.x, output: arrays.output, params: [], state: [] };
    planned.forward({ ...forward, scratch: [arrays.mask] });
    planned.backward({
      ...forward,
      scratch: [arrays.mask],
      gradOutput: arrays.dy,
      gradInput: arrays.dx,
      paramGrads: [],
    });
    return { calls, output: bits(arrays.output), mask: bits(arrays.mask), dx: bits(arrays.dx) };
  } finally {
    delete k.dropout;
    held.forEach((a) => simd.free(a));
  }
}

test("the dropout kind runs its kernel on arrays in the kernels' memory, its JS loops on others, to the same bits", () => {
  for (const [rate, width, n, seed] of [[0.2, 512, 4, 5], [0.5, 33, 3, 9], [0.3, 1, 1, 2]] as const) {
    const planned = plan(rate, width, seed), x = inputs(width * n, width);
    const shared = pass(planned, x, n, true), plain = pass(planned, x, n, false);
    assert.equal(shared.calls, 1, "the kernel ran on the kernels' memory");
    assert.equal(plain.calls, 0, "and not on plain arrays");
    assert.deepEqual(shared.output, plain.output);
    assert.deepEqual(shared.mask, plain.mask);
    assert.deepEqual(shared.dx, plain.dx);
  }
});

test("an unseeded dropout layer draws Math.random once a pass on the kernel as in the JS loops", () => {
  const planned = plan(0.4, 64), x = inputs(256, 1), original = Math.random;
  const results = [true, false].map((shared) => {
    let drawn = 0;
    Math.random = () => (++drawn, 0.3125);
    try {
      return { ...pass(planned, x, 4, shared), drawn };
    } finally {
      Math.random = original;
    }
  });
  assert.deepEqual(results.map((r) => r.drawn), [1, 1]);
  assert.deepEqual(results[0].output, results[1].output);
});
