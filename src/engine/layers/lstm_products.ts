/**
 * The two ways an LSTM's products run (see `LstmProducts` in lstm_math.ts):
 * float64 JS loops, and float32 products on fitstream's WebAssembly SIMD
 * kernels (as tfjs computes them), whose arrays live in the kernels' shared
 * memory so that a product reads them where they are.
 *
 * Why the kernels: an epoch of the benchmark LSTM (32 units, 50 steps × 8
 * features, batch 64, 2,048 rows) makes about 1.5 G multiply-adds; the JS
 * loops spent ~1,360 ms an epoch in them, the kernels ~280 (whole epochs of
 * the arithmetic: ~1,590 and ~560 ms; bench/lstm_products.ts on Deno, arms
 * alternating, on a loaded 2-core machine).
 *
 * @module
 */
import type { LstmProducts, ProductView } from "./lstm_math.ts";
import { simdKernels } from "../../kernels/simd/products.ts";

/**
 * float64 products in JS loops: `ab` and `atb` as rows of axpys (the inner
 * loop runs along a row of B and of C), `abt` as dot products of rows.
 */
export function jsProducts(): LstmProducts {
  let scratch = new Float64Array(0);
  const target = (length: number, out: Float64Array | undefined): Float64Array => {
    if (out) return out;
    if (scratch.length < length) scratch = new Float64Array(length);
    return scratch;
  };
  return {
    ab(a, b, m, k, n, out) {
      const c = target(m * n, out);
      c.fill(0, 0, m * n);
      for (let r = 0; r < m; r++) {
        const o = r * n, ar = r * k;
        for (let p = 0; p < k; p++) {
          const s = a[ar + p], bp = p * n;
          for (let j = 0; j < n; j++) c[o + j] += s * b[bp + j];
        }
      }
      return { values: c, stride: n };
    },
    abt(a, b, m, k, n, out) {
      const c = target(m * n, out);
      for (let r = 0; r < m; r++) {
        const ar = r * k, o = r * n;
        for (let j = 0; j < n; j++) {
          const bj = j * k;
          let s = 0;
          for (let p = 0; p < k; p++) s += a[ar + p] * b[bj + p];
          c[o + j] = s;
        }
      }
      return { values: c, stride: n };
    },
    atb(a, b, m, k, n, out) {
      const c = target(m * n, out);
      c.fill(0, 0, m * n);
      for (let p = 0; p < k; p++) {
        const ap = p * m, bp = p * n;
        for (let r = 0; r < m; r++) {
          const s = a[ap + r], o = r * n;
          for (let j = 0; j < n; j++) c[o + j] += s * b[bp + j];
        }
      }
      return { values: c, stride: n };
    },
    float64: (length) => new Float64Array(length),
    float32: (length) => new Float32Array(length),
    free() {},
  };
}

/**
 * float32 products on the SIMD kernels, or `undefined` where the runtime
 * lacks them. An array that does not fit the kernels' memory is an ordinary
 * one (copied in for each product), and a product that does not fit runs in
 * the JS loops.
 */
export function simdProducts(): LstmProducts | undefined {
  const kernels = simdKernels();
  if (!kernels) return undefined;
  const fallback = jsProducts();
  type Values = Float64Array | Float32Array;
  const run = (
    name: "ab" | "abt" | "atb",
    a: ArrayLike<number>,
    b: ArrayLike<number>,
    m: number,
    k: number,
    n: number,
    out: Float64Array | undefined,
  ): ProductView => {
    const product = kernels.multiply(
      { values: a as Values, transposed: name === "atb" },
      { values: b as Values, transposed: name === "abt" },
      m,
      k,
      n,
    );
    if (!product) return fallback[name](a, b, m, k, n, out);
    if (!out) return product;
    if (!product.widen(out)) {
      const { values, stride } = product;
      for (let r = 0; r < m; r++) {
        const o = r * n, v = r * stride;
        for (let j = 0; j < n; j++) out[o + j] = values[v + j];
      }
    }
    return { values: out, stride: n };
  };
  return {
    ab: (a, b, m, k, n, out) => run("ab", a, b, m, k, n, out),
    abt: (a, b, m, k, n, out) => run("abt", a, b, m, k, n, out),
    atb: (a, b, m, k, n, out) => run("atb", a, b, m, k, n, out),
    float64: (length) => kernels.float64(length) ?? new Float64Array(length),
    float32: (length) => kernels.float32(length) ?? new Float32Array(length),
    free(arrays) {
      for (const a of arrays) kernels.free(a);
    },
    step: (arrays) => kernels.lstmStep(arrays),
  };
}

/** How the LSTM kind's products run in this runtime, for `explainEngine`. */
export function lstmArithmetic(): string {
  return simdKernels()
    ? "the LSTM's products in float32 on fitstream's WebAssembly SIMD kernels"
    : "the LSTM's products in float64 JS loops (this runtime lacks WebAssembly SIMD or shared memory)";
}
