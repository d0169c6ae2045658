/**
 * The benchmark LSTM's arithmetic alone (32 units, 50 steps × 8 features,
 * batch 64, 32 batches = one epoch of 2,048 rows): forward and backward
 * passes on the JS products and on the SIMD kernels, arms alternating round
 * by round in one process; median ms per epoch and the part in products.
 *
 *   deno run -A bench/lstm_products.ts [--quick]
 *   bun bench/lstm_products.ts [--quick]
 */
import { LstmMath, type LstmProducts, type ProductView } from "../src/engine/layers/lstm_math.ts";
import { jsProducts, simdProducts } from "../src/engine/layers/lstm_products.ts";
import { simdKernels } from "../src/kernels/simd/products.ts";
import { benchArgs, jsonLine, median } from "./common.ts";

const { quick } = benchArgs();
const T = 50, F = 8, u = 32, n = 64, batches = 32;
await simdKernels()?.start();

/** The products, timed. */
function timed(products: LstmProducts, clock: { ms: number }): LstmProducts {
  const wrap = (f: LstmProducts["ab"]): LstmProducts["ab"] => (a, b, m, k, nn, out): ProductView => {
    const start = performance.now();
    const view = f(a, b, m, k, nn, out);
    clock.ms += performance.now() - start;
    return view;
  };
  return { ...products, ab: wrap(products.ab), abt: wrap(products.abt), atb: wrap(products.atb) };
}

const values = (length: number, seed: number) =>
  Float32Array.from({ length }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.3);
const x = values(n * T * F, 1), dOut = values(n * u, 5);
const weights = { kernel: values(F * 4 * u, 2), recurrent: values(u * 4 * u, 3), bias: values(4 * u, 4) };
const arms: [string, LstmProducts | undefined][] = [["js", jsProducts()], ["simd", simdProducts()]];
const results = new Map<string, { epoch: number[]; products: number[] }>();
for (let round = 0; round < (quick ? 2 : 7); round++) {
  for (const [name, products] of arms) {
    if (!products) continue;
    const clock = { ms: 0 };
    const math = new LstmMath(
      { steps: T, features: F, units: u, maxRows: n },
      { activation: "tanh", recurrentActivation: "hardSigmoid" },
      timed(products, clock),
    );
    const grads = {
      kernel: new Float64Array(F * 4 * u),
      recurrent: new Float64Array(u * 4 * u),
      bias: new Float64Array(4 * u),
    };
    const start = performance.now();
    for (let b = 0; b < batches; b++) {
      math.forward(x, n, weights);
      math.backward(dOut, grads);
    }
    const r = results.get(name) ?? { epoch: [], products: [] };
    r.epoch.push(performance.now() - start);
    r.products.push(clock.ms);
    results.set(name, r);
    math.release();
  }
}
const summary: Record<string, { epoch_ms: number; products_ms: number }> = {};
for (const [name, r] of results) {
  console.log(`${name}: ${median(r.epoch).toFixed(0)} ms an epoch (${median(r.products).toFixed(0)} in products)`);
  summary[name] = { epoch_ms: median(r.epoch), products_ms: median(r.products) };
}
jsonLine("lstm_products", { results: summary });
