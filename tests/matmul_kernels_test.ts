// fitstream's BatchMatMul and _FusedMatMul on the wasm backend (src/kernels/matmul.ts): which calls reach the SIMD
// kernels and which go back to tfjs's own kernel, the float32 error bound of their sums against a float64 reference,
// no leaked tensor or backend buffer on any path, and the kernels opt-out. Agreement with the cpu backend across
// shapes, transposes, batches, biases and activations is tests/kernel_conformance_test.ts's job.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../mod.ts";
import { simdMatMulCount } from "../src/kernels/matmul.ts";
import { simdKernels } from "../src/kernels/simd/products.ts";
import { backend } from "./tf_helpers.ts";
import { runScript } from "./spawn.ts";

/** Only where the wasm backend loads and the runtime has WebAssembly SIMD and shared memory. */
const runs = backend === "wasm" && simdKernels() !== undefined;

/** How many calls reached the SIMD kernels while `fn` ran, with `fn`'s result. */
function counted<T>(fn: () => T): { calls: number; result: T } {
  const before = simdMatMulCount();
  const result = fn();
  return { calls: simdMatMulCount() - before, result };
}

/**
 * The buffers the backend holds, tensors' and intermediates' alike (`tf.memory().numDataBuffers` counts only those
 * of tensors): a kernel that leaves an output or an intermediate behind leaves this higher.
 */
const buffers = () => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();

/** Seeded values in [-1, 1). */
function values(size: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: size }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

test("tf.matMul in every transpose and batch layout, tf.fused.matMul, and a Dense layer's products run on the SIMD kernels", () => {
  if (!runs) return;
  const layouts: [number[], number[], boolean, boolean][] = [
    [[7, 13], [13, 5], false, false],
    [[13, 7], [13, 5], true, false],
    [[7, 13], [5, 13], false, true],
    [[13, 7], [5, 13], true, true],
    [[3, 7, 13], [13, 5], false, false],
    [[2, 3, 7, 13], [3, 13, 5], false, false],
    [[1, 7, 13], [4, 13, 5], false, false],
  ];
  for (const [aShape, bShape, transposeA, transposeB] of layouts) {
    const { calls } = counted(() => tf.tidy(() => tf.matMul(tf.ones(aShape), tf.ones(bShape), transposeA, transposeB)));
    assert.equal(calls, 1, `${aShape} × ${bShape}, transposeA ${transposeA}, transposeB ${transposeB}`);
  }
  for (const activation of ["linear", "relu", "relu6", "elu", "leakyrelu", "prelu", "sigmoid"] as const) {
    const { calls } = counted(() =>
      tf.tidy(() =>
        tf.fused.matMul({
          a: tf.ones([7, 13]),
          b: tf.ones([13, 5]),
          bias: tf.ones([5]),
          activation,
          preluActivationWeights: activation === "prelu" ? tf.ones([5]) : undefined,
        })
      )
    );
    assert.equal(calls, 1, `fused, ${activation}`);
  }
  // A Dense chain's training step: the forward products and, per layer, the kernel gradient (xᵀ·dz) and the gradient
  // to the layer below (dz·kernelᵀ). Every product the step makes reaches the SIMD kernels.
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 9, activation: "relu", inputShape: [13] }),
      tf.layers.dense({ units: 3 }),
    ],
  });
  const x = tf.ones([7, 13]), y = tf.ones([7, 3]);
  const products = counted(() =>
    tf.tidy(() => {
      tf.variableGrads(() => tf.losses.meanSquaredError(y, model.apply(x) as tf.Tensor) as tf.Scalar);
    })
  );
  assert.equal(products.calls, 5, "2 forward products, 2 kernel gradients, 1 gradient to the first layer");
  tf.dispose([x, y]);
  model.dispose();
});

test("calls the SIMD kernels cannot take go to tfjs's own kernel, which gives its own result or error", async () => {
  if (!runs) return;
  // Batch shapes that tfjs indexes entry by entry modulo each operand's batch count: [2, 3] against [2, 1] reads B's
  // entry i % 2 for output entry i (not ⌊i / 3⌋). Ours takes only the layouts where that is a plain repeat; tfjs's own
  // kernel computes the rest, as before.
  const a = tf.tensor(values(6 * 4 * 5, 1), [2, 3, 4, 5]), b = tf.tensor(values(2 * 5 * 6, 2), [2, 1, 5, 6]);
  const ownResult = async () => {
    await useBackend("wasm", { kernels: "tfjs" });
    try {
      return tf.tidy(() => tf.matMul(a, b).dataSync().slice());
    } finally {
      await useBackend();
    }
  };
  const want = await ownResult();
  const { calls, result } = counted(() => tf.tidy(() => tf.matMul(a, b).dataSync().slice()));
  assert.equal(calls, 0);
  assert.deepEqual(result, want, "tfjs's own kernel, so its own values");
  // tfjs-backend-wasm's own errors: int32 operands, a bias of rank 2.
  const before = buffers();
  assert.throws(
    () => tf.tidy(() => tf.matMul(tf.ones([4, 5], "int32"), tf.ones([5, 6], "int32"))),
    /BatchMatMul for non non-float32 tensors not yet supported/,
  );
  assert.throws(
    () =>
      tf.tidy(() =>
        tf.engine().runKernel("_FusedMatMul", {
          a: tf.ones([1, 4, 5]),
          b: tf.ones([1, 5, 6]),
          bias: tf.ones([2, 1, 4, 6]),
        }, {
          transposeA: false,
          transposeB: false,
          activation: "linear",
        })
      ),
    /_FusedMatMul only supports rank-1 bias/,
  );
  assert.equal(buffers(), before, "nothing left behind by the failed calls");
  tf.dispose([a, b]);
});

test("tfjs's own kernel works as the fallback in a process where fitstream registered before the backend was set up", async () => {
  if (!runs) return;
  const { code, stdout, stderr } = await runScript("tests/fixtures/matmul_fallback.ts", []);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "[5,5,5]");
});

test("products on the SIMD kernels are within float32 summation's bound of a float64 reference, every transpose", () => {
  if (!runs) return;
  // Summing k float32 products one at a time (fused or not) errs by at most γ(k) · Σ|a·b|, γ(k) = k·u / (1 − k·u),
  // u = 2⁻²⁴; storing the result adds half an ulp. Depths up to 1,500 span several of the kernels' 256-deep blocks.
  const u = 2 ** -24;
  for (const [m, k, n] of [[1, 1, 1], [7, 1500, 13], [129, 300, 1], [1, 257, 129], [33, 784, 17]]) {
    const av = values(m * k, m + k), bv = values(k * n, k + n);
    for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]]) {
      // Stored transposed where asked: element (i, p) of A at i·k + p, or at p·m + i.
      const at = (i: number, p: number) => transposeA ? av[p * m + i] : av[i * k + p];
      const bt = (p: number, j: number) => transposeB ? bv[j * k + p] : bv[p * n + j];
      const got = tf.tidy(() =>
        tf.matMul(
          tf.tensor(av, transposeA ? [k, m] : [m, k]),
          tf.tensor(bv, transposeB ? [n, k] : [k, n]),
          transposeA,
          transposeB,
        ).dataSync()
      );
      const gamma = k * u / (1 - k * u);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0, magnitude = 0;
          for (let p = 0; p < k; p++) {
            const t = at(i, p) * bt(p, j);
            sum += t;
            magnitude += Math.abs(t);
          }
          const gap = Math.abs(got[i * n + j] - sum), bound = gamma * magnitude + u * Math.abs(sum);
          assert.ok(
            gap <= bound,
            `${m}×${k}×${n} tA ${transposeA} tB ${transposeB} at (${i}, ${j}): ${gap} > ${bound}`,
          );
        }
      }
    }
  }
});

test("no tensor or backend buffer outlives a call, on the SIMD kernels or tfjs's own", () => {
  if (!runs) return;
  const a = tf.tensor(values(3 * 7 * 13, 3), [3, 7, 13]), b = tf.tensor(values(13 * 5, 4), [13, 5]);
  const bias = tf.tensor(values(5, 5), [5]), alphas = tf.tensor(values(5, 6), [5]);
  const tensors = tf.memory().numTensors, before = buffers();
  for (let i = 0; i < 3; i++) {
    tf.tidy(() => {
      tf.matMul(a, b);
      tf.matMul(a, tf.ones([5, 13]), false, true);
      tf.fused.matMul({ a, b, bias, activation: "prelu", preluActivationWeights: alphas });
      tf.matMul(tf.ones([2, 3, 7, 13]), tf.ones([2, 1, 13, 5])); // tfjs's own kernel
      tf.grads((x: tf.Tensor) => tf.matMul(x, b).sum())([a]);
    });
  }
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(buffers(), before);
  tf.dispose([a, b, bias, alphas]);
});

test("with useBackend's kernels 'tfjs', tfjs's own BatchMatMul and _FusedMatMul run; useBackend() brings ours back", async () => {
  if (!runs) return;
  const product = () => counted(() => tf.tidy(() => tf.matMul(tf.ones([4, 5]), tf.ones([5, 6]))));
  const fused = () =>
    counted(() => tf.tidy(() => tf.fused.matMul({ a: tf.ones([4, 5]), b: tf.ones([5, 6]), bias: tf.ones([6]) })));
  try {
    await useBackend("wasm", { kernels: "tfjs" });
    assert.equal(product().calls, 0);
    assert.equal(fused().calls, 0);
  } finally {
    await useBackend();
  }
  assert.equal(product().calls, 1);
  assert.equal(fused().calls, 1);
});

test("a fused relu or relu6 on the SIMD kernels keeps NaN, clips and zeroes as the cpu backend's Math.max and Math.min do", async () => {
  // A row of the 3×1 · 1×8 product holds NaN, negatives, 0, values above 6; the bias adds -0 and a negative.
  const a = [1, Number.NaN, -2], b = [-3, -0.5, 0, 0.25, 2, 3.5, 6, 9];
  const bias = [-0, 0.5, 0, -1, 0, 0, 0.5, -2];
  const run = async (name: string) => {
    await useBackend(name as "wasm" | "cpu");
    return ["relu", "relu6"].map((activation) =>
      tf.tidy(() => {
        const out = tf.fused.matMul({
          a: tf.tensor2d(a, [3, 1]),
          b: tf.tensor2d(b, [1, 8]),
          bias: tf.tensor1d(bias),
          activation: activation as "relu" | "relu6",
        });
        return Array.from(out.dataSync());
      })
    );
  };
  const before = simdMatMulCount();
  const wasm = await run("wasm");
  assert.ok(simdMatMulCount() > before, "the products ran on the SIMD kernels");
  const cpu = await run("cpu");
  await useBackend();
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(wasm[i].map((v) => Object.is(v, -0) ? "-0" : v), cpu[i].map((v) => Object.is(v, -0) ? "-0" : v));
  }
  assert.ok(wasm[0].some(Number.isNaN) && wasm[1].includes(6) && wasm[0].includes(0));
});
