// fitstream's WebAssembly SIMD kernels: products in float32 for every operand layout and size, the same on one
// thread or several, Adam bit for bit as tfjs's, arrays in the shared memory, helpers that never hold a
// finished program open.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import "./tf_helpers.ts";
import { useBackend } from "../mod.ts";
import { type Operand, SimdKernels, simdKernels } from "../src/kernels/simd/products.ts";
import { KC } from "../src/kernels/simd/share.ts";
import { ACTIVATION_LIST, ACTIVATION_NAMES } from "../src/kernels/activations.ts";
import { HostOptimizer } from "../src/engine/host_optimizer.ts";
import { createRandom } from "../src/data/random.ts";
import { runScript, startScript } from "./spawn.ts";
import { within } from "./helpers.ts";

const simd = simdKernels()!;

/** `length` float32-representable values in [-1, 1), from `seed`. */
function values(length: number, seed: number): Float64Array {
  const random = createRandom(seed);
  return Float64Array.from({ length }, () => Math.fround(random.next() * 2 - 1));
}

/** A product's m × n values, row after row (without the padding of its rows). */
const valuesOf = (p: { values: Float32Array; stride: number }, m: number, n: number) =>
  Array.from({ length: m * n }, (_, i) => p.values[Math.floor(i / n) * p.stride + i % n]);

/** Element (r, c) of an operand that holds a rows×cols matrix (or its transpose). */
const at = (o: Operand, rows: number, cols: number, r: number, c: number) =>
  o.transposed ? o.values[c * rows + r] : o.values[r * cols + c];

test("a product on the SIMD kernels is the float32 product, for every operand layout and awkward sizes", () => {
  assert.ok(simd, "WebAssembly SIMD and shared memory are there on Deno and Bun");
  // m, k, n: odd sizes, fewer columns than a panel, a depth over one packed block with a remainder.
  const shapes = [[1, 1, 1], [5, 3, 9], [13, 300, 17], [7, KC + 13, 3], [130, 520, 64], [64, 9, 1030]];
  for (const [m, k, n] of shapes) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const a = { values: values(m * k, m + k), transposed: ta },
          b = { values: values(k * n, k + n), transposed: tb };
        const c = simd.multiply(a, b, m, k, n)!;
        for (let r = 0; r < m; r++) {
          for (let j = 0; j < n; j++) {
            let exact = 0, size = 0;
            for (let i = 0; i < k; i++) {
              exact += at(a, m, k, r, i) * at(b, k, n, i, j);
              size += Math.abs(at(a, m, k, r, i) * at(b, k, n, i, j));
            }
            // float32 sums of k terms: within k·2⁻²⁴ of the terms' magnitude (and the result rounded once).
            const bound = (k + 1) * 2 ** -24 * size + 1e-30;
            const got = c.values[r * c.stride + j];
            assert.ok(Math.abs(got - exact) <= bound, `${m}×${k}×${n} ${ta} ${tb} at ${r},${j}: ${got} vs ${exact}`);
          }
        }
      }
    }
  }
});

test("float64 operands in the kernels' memory multiply to the bit as their float32 copies do, in every layout", () => {
  // Narrowed in the memory, then packed by each pack path: full panels of adjacent values (vectors), of values
  // adjacent along the depth (4×4 transposes, depth a multiple of 4), and the rest value by value; depths over one
  // block; specials and values that round.
  const special = [0, -0, NaN, Infinity, -Infinity, 1e-45, 1 + 2 ** -30, -3.5e38, 5e-324];
  // (One column: its own kernels, the same sums wherever A lies.)
  const shapes = [[1, 1, 1], [5, 3, 9], [13, 300, 17], [7, KC + 12, 3], [12, 8, 16], [64, 9, 40], [13, 300, 1], [
    512,
    64,
    1,
  ]];
  for (const [m, k, n] of shapes) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        // Values with bits below float32's, so rounding on the way in matters.
        const as = values(m * k, 7 * m + k).map((v, i) => v + (i % 3) * 2 ** -40);
        const bs = values(k * n, 5 * k + n).map((v, i) => v - (i % 5) * 2 ** -41);
        special.forEach((v, i) => {
          as[(i * 11) % as.length] = v;
          bs[(i * 13) % bs.length] = v;
        });
        const a64 = simd.float64(m * k)!, b64 = simd.float64(k * n)!;
        a64.set(as);
        b64.set(bs);
        const inMemory = simd.multiply({ values: a64, transposed: ta }, { values: b64, transposed: tb }, m, k, n)!;
        const got = valuesOf(inMemory, m, n);
        const copied = simd.multiply(
          { values: Float32Array.from(as), transposed: ta },
          { values: Float32Array.from(bs), transposed: tb },
          m,
          k,
          n,
        )!;
        assert.deepEqual(got, valuesOf(copied, m, n), `${m}×${k}×${n} transposed ${ta} ${tb}`);
        simd.free(a64);
        simd.free(b64);
      }
    }
  }
});

test("float64 gradients scaled by their activation's slope in place in the kernels are bit for bit the JS loops'", () => {
  const special = [0, -0, NaN, Infinity, -Infinity, 1e-300, -3.5, 5e-324];
  for (const [rows, cols] of [[1, 1], [3, 7], [128, 256], [5, 10]]) {
    const own = (from: Float64Array) => {
      const view = simd.float64(from.length)!;
      view.set(from);
      return view;
    };
    const gs = values(rows * cols, rows + 3 * cols), ys = values(rows * cols, 2 * rows + cols);
    special.forEach((v, i) => {
      gs[(i * 5) % gs.length] = v;
      ys[(i * 7 + 1) % ys.length] = v;
    });
    ACTIVATION_LIST.forEach((entry, code) => {
      const name = ACTIVATION_NAMES[code];
      for (const withBias of [false, true]) {
        const g = own(gs), y = own(ys), bias = withBias ? own(values(cols, cols)) : undefined;
        const js = Float64Array.from(gs), jsBias = bias && Float64Array.from(bias);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const i = r * cols + c;
            js[i] *= entry.slope(ys[i]);
            if (jsBias) jsBias[c] += js[i];
          }
        }
        const done = simd.scaleBySlope(g, y, rows, cols, code, bias);
        assert.equal(done, entry.simd !== undefined, name);
        if (done) {
          assert.deepEqual(Array.from(g), Array.from(js), `${rows}×${cols} ${name}`);
          if (bias) assert.deepEqual(Array.from(bias), Array.from(jsBias!), `bias gradient ${rows}×${cols} ${name}`);
        }
        // Arrays outside the kernels' memory, or shorter than the sizes say, are left to the caller's JS.
        assert.equal(simd.scaleBySlope(Float64Array.from(gs), y, rows, cols, code, bias), false);
        assert.equal(simd.scaleBySlope(g, y, rows + 1, cols, code, bias), false);
        if (bias && rows > 1) assert.equal(simd.scaleBySlope(g, y, 1, cols + 1, code, bias), false);
        for (const view of [g, y, bias]) if (view) simd.free(view);
      }
    });
  }
});

test("a product is the same to the bit on one thread and on all of them", async () => {
  await simd.start();
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  if (cores > 1) assert.ok(simd.helpers >= 1, "helper threads started");
  const alone = new SimdKernels(0);
  // [600, 300, 5]: narrower than a panel a thread, so shared by chunks of rows, with a last block of depth 44.
  for (const [m, k, n] of [[128, 784, 256], [300, 128, 70], [128, 1024, 10], [600, 300, 5]]) {
    const a = { values: values(m * k, 1), transposed: false }, b = { values: values(k * n, 2), transposed: true };
    const one = alone.multiply(a, b, m, k, n)!.values.slice();
    const all = simd.multiply(a, b, m, k, n)!.values.slice();
    assert.deepEqual(all, one, `${m}×${k}×${n}`);
  }
});

test("a one-column product is the float32 product: summed in order like the panels' when A is transposed, within float32's bound otherwise", () => {
  const alone = new SimdKernels(0);
  for (const [m, k] of [[1, 1], [3, 4], [4, 3], [5, 7], [13, 64], [512, 64], [6, 300], [37, 513]]) {
    for (const transposed of [false, true]) {
      const a64 = alone.float64(m * k)!, b = values(k, k + 3);
      a64.set(values(m * k, m * 7 + k));
      const a = { values: a64, transposed };
      // The panels' sums: column 0 of a two-column product whose first column is b (each column its own sums).
      const b2 = Float64Array.from({ length: 2 * k }, (_, i) => i % 2 === 0 ? b[i / 2] : 1);
      const viaPanels = alone.multiply(
        { values: Float32Array.from(a64), transposed },
        { values: b2, transposed: false },
        m,
        k,
        2,
      )!;
      const panels = Array.from({ length: m }, (_, r) => viaPanels.values[r * viaPanels.stride]);
      const column = alone.multiply(a, { values: b, transposed: false }, m, k, 1)!;
      const got = Array.from({ length: m }, (_, r) => column.values[r * column.stride]);
      if (transposed) assert.deepEqual(got, panels, `${m}×${k} transposed: the panels' sums, bit for bit`);
      for (let r = 0; r < m; r++) {
        let exact = 0, size = 0;
        for (let i = 0; i < k; i++) {
          const term = at(a, m, k, r, i) * b[i];
          exact += term;
          size += Math.abs(term);
        }
        const bound = (k + 1) * 2 ** -24 * size + 1e-30;
        assert.ok(Math.abs(got[r] - exact) <= bound, `${m}×${k} ${transposed} row ${r}: ${got[r]} vs ${exact}`);
      }
      alone.free(a64);
    }
  }
});

test("Adam on the SIMD kernels updates weights and moments bit for bit as tfjs's Adam on the cpu backend, odd sizes included, from float64 or float32 gradients", async () => {
  // 1–3 weights: all of them in JS, with the kernel's operations; 5: one quad and one; 20,003: chunks on every thread.
  for (const size of [1, 2, 3, 5, 20_003]) await adamAgainstTfjs(size);
});

/** The Adam test's body for one array size. */
async function adamAgainstTfjs(size: number) {
  const steps = 3, start = Float32Array.from(values(size, 3));
  // Gradients with more bits than float32 holds: the kernels round them as they read them, as tfjs holds them.
  const grads = Array.from({ length: steps }, (_, step) => values(size, 10 + step).map((x, i) => x * (1 + 1e-9 * i)));
  const run = (inShared: boolean, float32Gradients: boolean) => {
    const variable = tf.variable(tf.tensor1d(start));
    const optimizer = tf.train.adam(0.01);
    const host = new HostOptimizer(optimizer, [variable]);
    const held: Float32Array[] = [];
    const allocate = (n: number) => {
      const view = inShared ? simd.float32(n)! : new Float32Array(n);
      held.push(view);
      return view;
    };
    host.load(allocate);
    const w = allocate(size);
    w.set(start);
    const g = float32Gradients
      ? (inShared ? simd.float32(size)! : new Float32Array(size))
      : (inShared ? simd.float64(size)! : new Float64Array(size));
    for (const step of grads) {
      g.set(step);
      host.step([w], [g]);
    }
    host.save();
    const slots = optimizer as unknown as Record<"accumulatedFirstMoment" | "accumulatedSecondMoment", Slot[]>;
    const result = {
      w: w.slice(),
      m: momentOf(slots.accumulatedFirstMoment),
      v: momentOf(slots.accumulatedSecondMoment),
    };
    if (inShared) [...held, g].forEach((view) => simd.free(view));
    optimizer.dispose();
    variable.dispose();
    return result;
  };
  type Slot = { variable: tf.Variable };
  const momentOf = (slots: Slot[]) => Float32Array.from(slots[0].variable.dataSync() as Float32Array);
  const tfjs = await onCpu(() => {
    const variable = tf.variable(tf.tensor1d(start));
    const optimizer = tf.train.adam(0.01);
    for (const step of grads) {
      const gradient = tf.tensor1d(Float32Array.from(step));
      optimizer.applyGradients([{ name: variable.name, tensor: gradient }]);
      gradient.dispose();
    }
    const slots = optimizer as unknown as Record<"accumulatedFirstMoment" | "accumulatedSecondMoment", Slot[]>;
    const result = {
      w: Float32Array.from(variable.dataSync() as Float32Array),
      m: momentOf(slots.accumulatedFirstMoment),
      v: momentOf(slots.accumulatedSecondMoment),
    };
    optimizer.dispose();
    variable.dispose();
    return result;
  });
  assert.ok(tfjs.w.some((v, i) => v !== start[i]), "the weights moved");
  for (const float32Gradients of [false, true]) {
    const kernels = run(true, float32Gradients);
    const label = `${size} weights, ${float32Gradients ? "float32" : "float64"} gradients`;
    assert.deepEqual(kernels.w, tfjs.w, label);
    assert.deepEqual(kernels.m, tfjs.m, label);
    assert.deepEqual(kernels.v, tfjs.v, label);
  }
  // The JS rule (arrays outside the kernels' memory) rounds once a step instead of after each op: within float32
  // noise of tfjs, not bit for bit.
  const js = run(false, false);
  const worst = js.w.reduce(
    (gap, x, i) => Math.max(gap, Math.abs(x - tfjs.w[i]) / Math.max(1, Math.abs(tfjs.w[i]))),
    0,
  );
  assert.ok(worst <= 1e-6, `JS rule ${worst} from tfjs`);
}

/** Runs `body` with the cpu backend selected, then selects the backend before it again. */
async function onCpu<T>(body: () => T): Promise<T> {
  const before = tf.getBackend() as "cpu" | "wasm";
  await useBackend("cpu");
  try {
    return body();
  } finally {
    await useBackend(before);
  }
}

test("a product written into an array of the kernels' memory is the product, when its rows fit the array's room", () => {
  // 13 rows: the kernels write tiles of 6 rows, so the product needs room for 18.
  const [m, k, n] = [13, 40, 16];
  const a = { values: values(m * k, 21), transposed: true }, b = { values: values(k * n, 22), transposed: false };
  const expected = simd.multiply(a, b, m, k, n)!;
  const plain = Float32Array.from(
    { length: m * n },
    (_, i) => expected.values[Math.floor(i / n) * expected.stride + i % n],
  );
  const roomy = simd.float32(m * n, 18 * n)!, tight = simd.float32(m * n)!, guard = simd.float32(64)!;
  guard.fill(5);
  const into = simd.multiply(a, b, m, k, n, roomy)!;
  assert.ok(into.into, "written in place");
  assert.equal(into.values.byteOffset, roomy.byteOffset);
  assert.deepEqual(roomy, plain);
  // Without room for the last tile, or with rows padded past the width (n not a multiple of 8), it is not.
  const short = simd.multiply(a, b, m, k, n, tight)!;
  assert.ok(!short.into);
  assert.ok(tight.every((v) => v === 0), "left alone");
  const narrow = simd.float32(m * 12, 18 * 12)!;
  assert.ok(!simd.multiply(a, { values: values(k * 12, 23), transposed: false }, m, k, 12, narrow)!.into);
  assert.ok(guard.every((v) => v === 5), "nothing past the arrays was written");
  [roomy, tight, guard, narrow].forEach((view) => simd.free(view));
});

test("arrays in the shared memory come zeroed, are reused once freed, and are read in place by products", () => {
  const first = simd.float32(1000)!;
  first.fill(7);
  assert.ok(simd.owns(first));
  simd.free(first);
  const second = simd.float32(1000)!;
  assert.equal(second.byteOffset, first.byteOffset, "the freed block is reused");
  assert.ok(second.every((v) => v === 0));
  // The same product with B in the shared memory and B as a plain array.
  second.set(values(1000, 4));
  const a = { values: values(20 * 50, 5), transposed: false };
  const inPlace = simd.multiply(a, { values: second, transposed: false }, 20, 50, 20)!.values.slice();
  const copied = simd.multiply(a, { values: second.slice(), transposed: false }, 20, 50, 20)!.values.slice();
  assert.deepEqual(inPlace, copied);
  simd.free(second);
  assert.ok(!simd.owns(second));
});

test("the epilogues and the float32 narrowing in the kernels are bit for bit the JS loops'", () => {
  // Odd widths (a last single column), signed zeros, NaN and infinities among the values.
  const special = [0, -0, NaN, Infinity, -Infinity, 1e-45, -3.5];
  for (const [m, k, n] of [[7, 5, 9], [4, 3, 1], [6, 40, 64]]) {
    const own = (from: Float64Array) => {
      const view = simd.float64(from.length)!;
      view.set(from);
      return view;
    };
    const xs = values(m * k, 3 + n);
    special.forEach((v, i) => xs[(i * 5) % xs.length] = v);
    const x = own(xs), w = simd.float32(k * n)!;
    w.set(values(k * n, 4 + n));
    const bias = own(values(n, 5 + n)), below = own(values(m * n, 6 + n));
    special.forEach((v, i) => below[(i * 7) % below.length] = v);
    // Every activation of the registry: those with SIMD code run in the kernels, bit for bit their JS entry.
    ACTIVATION_LIST.forEach((entry, code) => {
      const name = ACTIVATION_NAMES[code];
      for (const withBias of [false, true]) {
        // (A product's values live in the memory's scratch: allocate first.)
        const out = simd.float64(m * n)!, grad = withBias ? simd.float64(n)! : undefined;
        const product = simd.multiply({ values: x, transposed: false }, { values: w, transposed: false }, m, k, n)!;
        if (!entry.simd) {
          assert.equal(product.addBias(undefined, out, code), false, name);
          assert.equal(product.scaleBySlope(below, out, code, grad), false, name);
          for (const view of [out, grad]) if (view) simd.free(view);
          continue;
        }
        const { values: c, stride } = product;
        const js = new Float64Array(m * n), jsGrad = new Float64Array(n);
        for (let r = 0; r < m; r++) {
          for (let j = 0; j < n; j++) {
            const s = withBias ? c[r * stride + j] + bias[j] : c[r * stride + j];
            js[r * n + j] = entry.forward(s);
          }
        }
        assert.ok(product.addBias(withBias ? bias : undefined, out, code));
        assert.deepEqual(Array.from(out), Array.from(js), `addBias ${m}×${n} ${name} bias ${withBias}`);
        for (let r = 0; r < m; r++) {
          for (let j = 0; j < n; j++) {
            const g = js[r * n + j] = c[r * stride + j] * entry.slope(below[r * n + j]);
            jsGrad[j] += g;
          }
        }
        assert.ok(product.scaleBySlope(below, out, code, grad));
        assert.deepEqual(Array.from(out), Array.from(js), `scaleBySlope ${m}×${n} ${name}`);
        if (grad) assert.deepEqual(Array.from(grad), Array.from(jsGrad), `bias gradient ${m}×${n} ${name}`);
        // Arrays outside the kernels' memory are left to the caller's JS.
        assert.equal(product.addBias(undefined, new Float64Array(m * n), code), false);
        for (const view of [out, grad]) if (view) simd.free(view);
      }
    });
    // Operands in float64 in the memory are narrowed there, rounded as a Float32Array stores them.
    const viaKernels = simd.multiply({ values: x, transposed: false }, { values: w, transposed: false }, m, k, n)!;
    const got = valuesOf(viaKernels, m, n);
    const viaJs = simd.multiply(
      { values: Float64Array.from(x), transposed: false },
      { values: w, transposed: false },
      m,
      k,
      n,
    )!;
    assert.deepEqual(got, valuesOf(viaJs, m, n), `narrowed operand ${m}×${k}`);
    for (const view of [x, w, bias, below]) simd.free(view);
  }
});

test("thousands of small shared products with pauses between them all finish, each the one-thread product", async () => {
  const child = startScript("tests/fixtures/simd_stress.ts", ["30000"]);
  try {
    // A bound against a deadlock only: the run took 10 s on a 2-core machine, 12-21 s beside two busy loops.
    const result = await within(300_000, "the stress run to end", child.done);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout.trim());
    assert.deepEqual(printed, { jobs: 30000, helpers: printed.helpers, mismatches: 0 });
    const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
    assert.ok(printed.helpers >= 1 || cores < 2, "helpers took part");
  } finally {
    child.kill("SIGKILL");
  }
});

test("the benchmark LSTM's per-step products (64 × 32 × 128) run on this thread alone; twice that size is shared", async () => {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  await simd.start();
  const operand = (length: number): Operand => ({ values: new Float32Array(length).fill(0.5), transposed: false });
  simd.multiply(operand(64 * 32), operand(32 * 128), 64, 32, 128);
  assert.equal(simd.lastJobThreads, 1, "2^18 multiply-adds: one thread");
  simd.multiply(operand(64 * 64), operand(64 * 128), 64, 64, 128);
  assert.equal(simd.lastJobThreads, simd.jobThreads, "2^19 multiply-adds: every thread there is");
  if (cores > 1) assert.ok(simd.lastJobThreads > 1, "helpers took part");
});

test("helper threads start at the first job big enough to share, never for a model whose jobs are all small", async () => {
  const kernels = new SimdKernels(1);
  const operand = (length: number): Operand => ({ values: new Float32Array(length).fill(0.5), transposed: false });
  // The tutorial's first layer at batch 32 (32 × 8 × 64), forward and its kernel gradient, then the output column.
  kernels.multiply(operand(32 * 8), operand(8 * 64), 32, 8, 64);
  kernels.multiply({ ...operand(32 * 8), transposed: true }, operand(32 * 64), 8, 32, 64);
  kernels.multiply(operand(32 * 64), operand(64), 32, 64, 1);
  assert.equal(kernels.started, false, "no helper for small products");
  kernels.multiply(operand(64 * 64), operand(64 * 128), 64, 64, 128);
  assert.equal(kernels.started, true, "2^19 multiply-adds: the helpers start");
  await kernels.start();
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  if (cores > 1) assert.equal(kernels.helpers, 1);
});

test("a program whose helper threads sit idle still ends on its own", async () => {
  const result = await within(120_000, "the program to end", runScript("tests/fixtures/simd_exit.ts", []));
  assert.equal(result.code, 0, result.stderr);
  const printed = JSON.parse(result.stdout.trim());
  assert.equal(printed.value, 256);
});

test("useBackend's threads and memoryMiB bound the kernels, and useBackend() gives every core and 1 GiB back", async () => {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  try {
    await useBackend(undefined, { threads: 1, memoryMiB: 64 });
    assert.equal(simd.jobThreads, 1, "one thread: the helpers sit out");
    const big = simd.float32((80 * 2 ** 20) / 4);
    assert.equal(big, undefined, "80 MiB does not fit a 64 MiB limit");
    const small = simd.float32(1024);
    assert.ok(small, "a small array still does");
    simd.free(small!);
  } finally {
    await useBackend();
  }
  await simd.start();
  assert.equal(simd.jobThreads, Math.min(cores, 8), "every core again once the helpers are ready");
  const big = simd.float32((80 * 2 ** 20) / 4);
  assert.ok(big, "80 MiB fits the default 1 GiB");
  simd.free(big!);
});

test("useBackend refuses thread and memory limits out of range, from options or the environment", async () => {
  await assert.rejects(
    useBackend(undefined, { threads: 0 }),
    /useBackend: options.threads must be an integer from 1 to 8, got number 0/,
  );
  await assert.rejects(
    useBackend(undefined, { memoryMiB: 4096 }),
    /options.memoryMiB must be an integer from 16 to 1024/,
  );
  process.env.FITSTREAM_THREADS = "many";
  try {
    await assert.rejects(useBackend(), /FITSTREAM_THREADS must be an integer from 1 to 8, got the string "many"/);
  } finally {
    delete process.env.FITSTREAM_THREADS;
  }
});
