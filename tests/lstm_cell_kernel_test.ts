// The LSTM step kernel (src/kernels/simd/lstm_cell.ts) gives what lstm_math.ts's forward loop gives, bit for bit:
// the layer's outputs (every step's h with returnSequences) and, through everything the forward pass keeps, the
// backward pass's gradients — on inputs that take tanh through its series (below 1/16), its table and past 20, gates
// that saturate, both directions, with and without a bias, and NaN; other activations and odd unit counts take the
// loop.
import { test } from "node:test";
import assert from "node:assert/strict";
import "./tf_helpers.ts";
import { LstmMath, type LstmProducts } from "../src/engine/layers/lstm_math.ts";
import { simdProducts } from "../src/engine/layers/lstm_products.ts";
import { SimdKernels } from "../src/kernels/simd/products.ts";
import { createRandom } from "../src/data/random.ts";

const kernels = simdProducts()!;

/** The same products without their step: the forward pass runs lstm_math.ts's loop. */
const loopOnly: LstmProducts = { ...kernels, step: undefined };

/** Values of every float64 (as bits, so −0 differs from 0; NaN as "NaN"). */
const bits = (a: ArrayLike<number>) => Array.from(a, (v) => Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "-0" : v);

interface Setup {
  steps: number;
  features: number;
  units: number;
  rows: number;
  goBackwards?: boolean;
  bias?: boolean;
  scale: number;
  activation?: "tanh" | "relu";
  nan?: boolean;
}

/** One forward and backward pass with `products`; what it returns and the gradients. */
function run(products: LstmProducts, s: Setup, counted: { steps: number }) {
  const { steps, features, units, rows } = s;
  const random = createRandom(steps * 31 + units * 7 + rows);
  const values = (length: number, scale: number) =>
    Float64Array.from({ length }, () => (random.next() * 2 - 1) * scale);
  const x = values(rows * steps * features, s.scale);
  if (s.nan) x[5] = NaN;
  // Some inputs exactly 0, and some tiny: tanh's series and signed zeros.
  for (let i = 0; i < x.length; i += 17) x[i] = i % 34 === 0 ? 0 : x[i] * 1e-3;
  const weights = {
    kernel: Float32Array.from(values(features * 4 * units, 0.6)),
    recurrent: Float32Array.from(values(units * 4 * units, 0.6)),
    bias: s.bias === false ? undefined : Float32Array.from(values(4 * units, 0.5)),
  };
  const wrapped: LstmProducts = {
    ...products,
    step: products.step && ((arrays) => products.step!(arrays) && ++counted.steps > 0),
  };
  const math = new LstmMath(
    { steps, features, units, maxRows: rows },
    {
      activation: s.activation ?? "tanh",
      recurrentActivation: "hardSigmoid",
      goBackwards: s.goBackwards,
      returnSequences: true,
    },
    wrapped,
  );
  const x64 = products.float64(x.length);
  x64.set(x);
  const sequences = new Float64Array(rows * steps * units);
  const h = Array.from(math.forward(x64, rows, weights, sequences).subarray(0, rows * units));
  const grads = {
    kernel: new Float64Array(features * 4 * units),
    recurrent: new Float64Array(units * 4 * units),
    bias: new Float64Array(4 * units),
    input: new Float64Array(rows * steps * features),
  };
  math.backward(values(rows * steps * units, 1), grads);
  math.release();
  products.free([x64]);
  return {
    h: bits(h),
    sequences: bits(sequences),
    ...Object.fromEntries(Object.entries(grads).map(([k, v]) => [k, bits(v)])),
  };
}

test("an LSTM step on the SIMD kernels computes lstm_math.ts's loop, bit for bit, outputs and what backward reads", () => {
  const setups: Setup[] = [
    { steps: 7, features: 3, units: 4, rows: 5, scale: 1 },
    // Large inputs: pre-activations past ±20 (tanh's ±1) and saturated gates.
    { steps: 5, features: 8, units: 6, rows: 3, scale: 40, goBackwards: true },
    { steps: 50, features: 8, units: 32, rows: 16, scale: 2 },
    { steps: 4, features: 2, units: 2, rows: 1, scale: 0.05, bias: false },
    { steps: 3, features: 2, units: 4, rows: 2, scale: 1, nan: true },
  ];
  for (const s of setups) {
    const counted = { steps: 0 };
    const onKernels = run(kernels, s, counted), inLoop = run(loopOnly, s, { steps: 0 });
    assert.equal(counted.steps, s.steps, `every step on the kernels: ${JSON.stringify(s)}`);
    assert.deepEqual(onKernels, inLoop, JSON.stringify(s));
  }
});

test("an LSTM with other activations or an odd number of units runs lstm_math.ts's loop", () => {
  for (
    const s of [{ steps: 3, features: 2, units: 3, rows: 2, scale: 1 }, {
      steps: 3,
      features: 2,
      units: 4,
      rows: 2,
      scale: 1,
      activation: "relu" as const,
    }]
  ) {
    const counted = { steps: 0 };
    const onKernels = run(kernels, s, counted), inLoop = run(loopOnly, s, { steps: 0 });
    assert.equal(counted.steps, 0, JSON.stringify(s));
    assert.deepEqual(onKernels, inLoop);
  }
});

test("an LSTM step takes no memory of its own from the kernels (its tables are made with the memory) and refuses 0 units", () => {
  const alone = new SimdKernels(0);
  const before = alone.bytesInUse;
  const [n, steps, units] = [2, 3, 4];
  const arrays = {
    gates: alone.float64(n * steps * 4 * units)!.fill(0.3),
    cells: alone.float64(n * steps * units)!,
    actCells: alone.float64(n * steps * units)!,
    hPrev: alone.float64(n * steps * units)!,
    h: alone.float64(n * units)!,
  };
  const step = { ...arrays, n, steps, units, cell: 0, first: true, previous: -1 };
  assert.ok(alone.lstmStep(step));
  // tanh(float32 hardSigmoid…) of 0.3: the tables were there (a zero table would give NaN or 0 throughout).
  assert.ok(arrays.actCells.slice(0, units).every((v) => v > 0 && v < 1), String(arrays.actCells.slice(0, units)));
  assert.equal(alone.lstmStep({ ...step, units: 0 }), false);
  Object.values(arrays).forEach((a) => alone.free(a));
  assert.equal(alone.bytesInUse, before);
});
