// Kernels fitstream adds to the wasm backend compute what the cpu backend computes, and a conv net trains on wasm.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { collect, epochStream, take, useBackend } from "../mod.ts";
import { backend } from "./tf_helpers.ts";
import { coreCount, setKernelLimits, simdKernels } from "../src/kernels/simd/products.ts";

/** `fn` on the named backend, its result copied out; the backend is restored afterwards. */
async function on<T>(name: "cpu" | "wasm", fn: () => T): Promise<T> {
  const before = tf.getBackend();
  await useBackend(name);
  try {
    return fn();
  } finally {
    await tf.setBackend(before);
  }
}

test("Conv2DBackpropFilter on wasm equals the cpu backend's bit for bit, for strides, padding and both layouts", async () => {
  if (backend !== "wasm") return; // only where the wasm backend loads
  const cases: {
    x: [number, number, number, number];
    filter: [number, number, number, number];
    strides: number | [number, number];
    pad: "valid" | "same" | number;
    format: "NHWC" | "NCHW";
  }[] = [
    { x: [2, 9, 8, 3], filter: [3, 3, 3, 4], strides: 1, pad: "valid", format: "NHWC" },
    { x: [3, 10, 7, 2], filter: [3, 2, 2, 5], strides: 2, pad: "same", format: "NHWC" },
    { x: [2, 3, 8, 8], filter: [5, 5, 3, 2], strides: [2, 1], pad: 1, format: "NCHW" },
  ];
  for (const c of cases) {
    const seed = c.x.reduce((a, b) => a * 7 + b, 1);
    const xValues = tf.randomNormal([...c.x], 0, 1, "float32", seed).dataSync();
    const outShape = await on(
      "cpu",
      () =>
        tf.conv2d(tf.zeros([...c.x]) as tf.Tensor4D, tf.zeros([...c.filter]) as tf.Tensor4D, c.strides, c.pad, c.format)
          .shape,
    );
    const dyValues = tf.randomNormal(outShape, 0, 1, "float32", seed + 1).dataSync();
    const grad = (name: "cpu" | "wasm") =>
      on(name, () =>
        tf.tidy(() => {
          const x = tf.tensor(xValues, [...c.x]) as tf.Tensor4D;
          const dy = tf.tensor(dyValues, outShape) as tf.Tensor4D;
          const kernel = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
            strides: c.strides,
            pad: c.pad,
            dataFormat: c.format,
            filterShape: [...c.filter],
          }) as tf.Tensor;
          return Array.from(kernel.dataSync());
        }));
    const [cpu, wasm] = [await grad("cpu"), await grad("wasm")];
    assert.equal(wasm.length, cpu.length);
    assert.deepEqual(wasm, cpu, `${JSON.stringify(c)}: the same sums in the same order, bit for bit`);
  }
});

test("the issue's small CNN trains on the default backend, and its loss falls", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 16,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({
        filters: 32,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
  const x = tf.randomUniform([64, 28, 28, 1], 0, 1, "float32", 4);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 10), "int32"), 10).toFloat();
  const optimizer = tf.train.adam(1e-3);
  const loss = (p: tf.Tensor, y: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p);
  const events = await collect(
    epochStream({ data: [x, labels], model, optimizer, loss, batchSize: 64, seed: 1 }).pipeThrough(take(3)),
  );
  assert.equal(events.length, 3);
  assert.ok(events[2].train_loss < events[0].train_loss, events.map((e) => e.train_loss).join(" → "));
  tf.dispose([x, labels]);
  model.dispose();
  optimizer.dispose();
});

test("useBackend with kernels 'tfjs' puts tfjs's own kernels back, and useBackend() fitstream's again", async () => {
  if (backend !== "wasm") return; // only where the wasm backend loads
  const segmentSum = () =>
    tf.tidy(() =>
      Array.from(
        (tf.engine().runKernel("UnsortedSegmentSum", {
          x: tf.tensor2d([[1, 2], [3, 4], [5, 6]]),
          segmentIds: tf.tensor1d([1, 0, 1], "int32"),
        }, { numSegments: 2 }) as tf.Tensor).dataSync(),
      )
    );
  const maxPoolGrad = () => tf.getKernel("MaxPoolGrad", "wasm")?.kernelFunc;
  const ours = maxPoolGrad();
  try {
    await useBackend("wasm", { kernels: "tfjs" });
    assert.throws(segmentSum, /UnsortedSegmentSum.*not registered/, "tfjs-backend-wasm has no UnsortedSegmentSum");
    assert.notEqual(maxPoolGrad(), ours, "tfjs-backend-wasm's own MaxPoolGrad is back");
    assert.ok(maxPoolGrad(), "and registered");
  } finally {
    await useBackend();
  }
  assert.deepEqual(segmentSum(), [3, 4, 6, 8]);
  assert.equal(maxPoolGrad(), ours);
});

test("useBackend refuses an unknown option key and an unknown kernels value, naming them", async () => {
  await assert.rejects(
    useBackend("wasm", { kernel: "tfjs" } as never),
    (e: Error) => e instanceof TypeError && /useBackend/.test(e.message) && /kernel/.test(e.message),
  );
  await assert.rejects(
    useBackend("wasm", { kernels: "xnnpack" } as never),
    (e: Error) =>
      e instanceof RangeError &&
      /options\.kernels must be "fitstream" or "tfjs", got the string "xnnpack"/.test(e.message),
  );
});

test("an embedding model trains with model.fit on the default backend after useBackend", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({
        inputDim: 10,
        outputDim: 3,
        inputLength: 4,
        embeddingsInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 3 }),
      }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: "meanSquaredError" });
  const x = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8], [9, 1, 1, 0]]), y = tf.tensor2d([[1], [0], [0.5]]);
  const before = model.getWeights()[0].dataSync().slice();
  const history = await model.fit(x, y, { epochs: 2, batchSize: 3, verbose: 0, shuffle: false });
  assert.equal(history.history.loss.length, 2);
  const after = model.getWeights()[0].dataSync();
  assert.ok(after.some((v, i) => v !== before[i]), "the embeddings moved");
  tf.dispose([x, y]);
  model.dispose();
});

test("fitstream's kernels give each output the dtype and values the cpu backend gives, for int32, bool and empty inputs", async () => {
  if (backend !== "wasm") return; // only where the wasm backend loads
  const run = () =>
    tf.tidy(() => {
      const results = [
        tf.maxPool3d(tf.tensor5d([1, 5, 3, 2, 7, 4, 6, 8], [1, 2, 2, 2, 1], "int32"), 2, 2, "valid"),
        tf.gather(
          tf.tensor2d([[1, 0, 1], [0, 1, 1]], [2, 3], "bool"),
          tf.tensor2d([[1, 0], [2, 1]], [2, 2], "int32"),
          1,
          1,
        ),
        tf.unsortedSegmentSum(tf.zeros([0, 3]), tf.tensor1d([], "int32"), 2),
        tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32"), tf.tensor1d([1, 1], "int32"), 2),
        tf.oneHot(tf.tensor1d([0, 2], "int32"), 3, 1, 0, "bool"),
        tf.clipByValue(tf.tensor1d([0, 4, 7, -2, -9], "int32"), -1.5, 3.5),
        tf.cast(tf.tensor1d([0.25, -0.5, 0, NaN]), "bool"),
      ];
      return results.map((t) => ({ dtype: t.dtype, shape: t.shape, values: Array.from(t.dataSync()) }));
    });
  const wasm = run();
  const cpu = await on("cpu", run);
  assert.deepEqual(wasm, cpu);
});

test("the CNN kernels on the SIMD kernels give the same bits on one thread as on all of them", async () => {
  if (backend !== "wasm") return; // only where the wasm backend loads
  const simd = simdKernels();
  if (!simd) return;
  await simd.start();
  const random = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed);
  // The MNIST CNN's shapes at batch 40 (more samples than a chunk), 'same' padding and strides: every path of
  // conv2d_filter_taps.ts, conv2d_direct.ts and the SIMD MaxPoolGrad.
  const x1 = random([40, 28, 28, 1], 1), w1 = random([5, 5, 1, 8], 2), dy1 = random([40, 24, 24, 8], 3);
  const x2 = random([40, 13, 11, 8], 4), w2 = random([3, 3, 8, 12], 5), dy2 = random([40, 7, 6, 12], 6);
  const pooled = tf.maxPool(dy1 as tf.Tensor4D, 2, 2, "valid"), poolDy = random(pooled.shape, 7);
  const same = { strides: 2, pad: "same", dataFormat: "NHWC" } as const;
  const run = () =>
    tf.tidy(() =>
      [
        tf.engine().runKernel("Conv2DBackpropFilter", { x: x1, dy: dy1 }, {
          strides: 1,
          pad: "valid",
          dataFormat: "NHWC",
          filterShape: [5, 5, 1, 8],
        }),
        tf.engine().runKernel("Conv2DBackpropFilter", { x: x2, dy: dy2 }, { ...same, filterShape: [3, 3, 8, 12] }),
        tf.engine().runKernel("Conv2D", { x: x1, filter: w1 }, { strides: 1, pad: "valid", dilations: 1 }),
        tf.engine().runKernel("Conv2D", { x: x2, filter: w2 }, { ...same, dilations: 1 }),
        tf.engine().runKernel("Conv2DBackpropInput", { dy: dy2, filter: w2 }, { ...same, inputShape: x2.shape }),
        tf.engine().runKernel("MaxPoolGrad", { dy: poolDy, input: dy1, output: pooled }, {
          filterSize: 2,
          strides: 2,
          pad: "valid",
        }),
      ].map((t) => (t as tf.Tensor).dataSync().slice())
    );
  const all = run();
  setKernelLimits({ threads: 1 });
  try {
    const one = run();
    for (let i = 0; i < all.length; i++) assert.deepEqual(all[i], one[i], `output ${i}`);
  } finally {
    setKernelLimits({ threads: coreCount() });
  }
  tf.dispose([x1, w1, dy1, x2, w2, dy2, pooled, poolDy]);
});

test("a clone on wasm shares its tensor's memory, which lives until both are disposed", async () => {
  if (backend !== "wasm") return; // only where the wasm backend loads
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  const y = tf.clone(x);
  assert.equal(y.dataId, x.dataId, "shared, not copied");
  const wasm = tf.backend() as unknown as { refCount(dataId: object): number };
  assert.equal(wasm.refCount(x.dataId), 2);
  x.dispose();
  assert.deepEqual(await y.data(), new Float32Array([1, 2, 3, 4]));
  y.dispose();
  assert.equal(wasm.refCount(y.dataId), 0, "freed with the last");
});
