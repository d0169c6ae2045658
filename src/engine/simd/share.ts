/**
 * One thread's share of a product `C = A · B` on the SIMD kernels, the same
 * code on the training thread and on the helper threads. The job sits in a
 * small block of shared memory (32-bit words), so a helper needs no message
 * to start: the training thread writes the job, bumps its number and wakes
 * the helpers. Work is split by whole 8-column panels of C (or 6-row panels
 * when C is narrow), so every element of C is one thread's sum in one fixed
 * order: the result does not depend on how many threads there are, nor on
 * which thread took which panel.
 *
 * @module
 */
import { type Kernels, MR, NR } from "./kernels.ts";

/**
 * Deno or Bun: helpers start with `node:worker_threads` there (they can be
 * unref'd, so an idle helper never keeps a finished program alive), with a
 * module `Worker` elsewhere.
 */
export const isServerRuntime: boolean = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ||
  typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

/** Word indices in the control block (an `Int32Array` over its first bytes). */
export const WORD = {
  /** The job number; a negative number tells helpers to stop. */
  job: 0,
  /** What the job is: {@link PRODUCT} or {@link ADAM}. */
  kind: 1,
  parts: 2,
  /** How many helpers are ready for jobs. */
  ready: 3,
  // A product C = A · B: A's element (m, k) at byte a + m·aOuter + k·aInner, B's (k, n) at b + n·bOuter + k·bInner.
  a: 4,
  aOuter: 5,
  aInner: 6,
  b: 7,
  bOuter: 8,
  bInner: 9,
  c: 10,
  ldc: 11,
  m: 12,
  n: 13,
  k: 14,
  scratch: 15,
  scratchStride: 16,
  // An Adam update of `pairs` pairs of weights; its scalars are the float64 values at ADAM_SCALARS.
  w: 17,
  g: 18,
  mSlot: 19,
  vSlot: 20,
  pairs: 21,
  /** The next 8-column panel of C a thread may take (see {@link runShare}). */
  next: 22,
  /** `done + t`: the last job helper `t` finished. */
  done: 48,
} as const;

/** Job kinds. */
export const PRODUCT = 0, ADAM = 1;

/** Index (in a `Float64Array` over the control block) of Adam's eight scalars: b1, ob1, b2, ob2, r1, r2, eps, nlr. */
export const ADAM_SCALARS = 16;

/** Bytes the control block takes (room for the done words of 16 helpers). */
export const CONTROL_BYTES = 256;

/** Depth of a packed block: 256 · 8 floats of B (8 KB) stay in L1 while A's panels stream from L2. */
export const KC = 256;

/** The bytes of scratch one thread needs for a product of `m` rows and depth `k` (all of A packed, one B panel). */
export function scratchBytes(m: number, k: number): number {
  return (Math.ceil(m / MR) * MR * Math.ceil(k / KC) * KC + KC * NR) * 4;
}

/**
 * Runs part `t` of the job in `ctl` with `kernels`.
 *
 * A product with at least one 8-column panel of C per thread is shared out
 * as it runs: each thread packs all of A, then takes chunks of panels from
 * a counter in the control block until none are left. A thread that starts
 * late or runs slower (a helper woken from sleep, a core the machine lends
 * elsewhere for a while) then takes fewer chunks instead of holding up the
 * product: a wide MLP's eight products of a step ran 2–16% faster than with
 * fixed halves, on Deno and Bun (interleaved runs, in alternating order).
 * Which thread computes a panel does not change its values.
 * Narrower products split their 6-row panels in fixed parts.
 */
export function runShare(kernels: Kernels, ctl: Int32Array, t: number): void {
  if (ctl[WORD.kind] === ADAM) return adamShare(kernels, ctl, t);
  const m = ctl[WORD.m], n = ctl[WORD.n], k = ctl[WORD.k], parts = ctl[WORD.parts];
  const a = ctl[WORD.a], aOuter = ctl[WORD.aOuter], aInner = ctl[WORD.aInner];
  const b = ctl[WORD.b], bOuter = ctl[WORD.bOuter], bInner = ctl[WORD.bInner];
  const c = ctl[WORD.c], ldc = ctl[WORD.ldc];
  const packA = ctl[WORD.scratch] + t * ctl[WORD.scratchStride];
  const panelsA = Math.ceil(m / MR), panelsB = Math.ceil(n / NR);
  // One block of A, packed: panels · MR rows · KC depth.
  const blockA = panelsA * MR * KC * 4;
  const productOf = (p0: number, p1: number, packedA: (k0: number) => number, q0: number, q1: number) => {
    const row0 = p0 * MR;
    const packB = packA + (p1 - p0) * MR * Math.ceil(k / KC) * KC * 4;
    for (let k0 = 0; k0 < k; k0 += KC) {
      const depth = Math.min(KC, k - k0), at = packedA(k0);
      for (let q = q0; q < q1; q++) {
        const col0 = q * NR;
        kernels.pack(b + col0 * bOuter + k0 * bInner, bOuter, bInner, Math.min(NR, n - col0), depth, packB, NR);
        kernels.panels(at, packB, c + row0 * ldc + col0 * 4, ldc, depth, p1 - p0, k0 > 0 ? 1 : 0);
      }
    }
  };
  if (panelsB >= parts) {
    const chunk = Math.max(1, Math.floor(panelsB / (parts * 8)));
    if (Atomics.load(ctl, WORD.next) >= panelsB) return;
    for (let k0 = 0; k0 < k; k0 += KC) {
      kernels.pack(a + k0 * aInner, aOuter, aInner, m, Math.min(KC, k - k0), packA + (k0 / KC) * blockA, MR);
    }
    for (;;) {
      const q0 = Atomics.add(ctl, WORD.next, chunk);
      if (q0 >= panelsB) return;
      productOf(0, panelsA, (k0) => packA + (k0 / KC) * blockA, q0, Math.min(q0 + chunk, panelsB));
    }
  }
  const p0 = Math.floor(t * panelsA / parts), p1 = Math.floor((t + 1) * panelsA / parts);
  if (p0 >= p1) return;
  const row0 = p0 * MR, rows = Math.min(p1 * MR, m) - row0;
  productOf(
    p0,
    p1,
    (k0) => {
      kernels.pack(a + row0 * aOuter + k0 * aInner, aOuter, aInner, rows, Math.min(KC, k - k0), packA, MR);
      return packA;
    },
    0,
    panelsB,
  );
}

function adamShare(kernels: Kernels, ctl: Int32Array, t: number): void {
  const pairs = ctl[WORD.pairs], parts = ctl[WORD.parts];
  const p0 = Math.floor(t * pairs / parts), p1 = Math.floor((t + 1) * pairs / parts);
  if (p0 >= p1) return;
  const s = new Float64Array(ctl.buffer, ctl.byteOffset + ADAM_SCALARS * 8, 8);
  kernels.adam(
    ctl[WORD.w] + p0 * 8,
    ctl[WORD.g] + p0 * 16,
    ctl[WORD.mSlot] + p0 * 8,
    ctl[WORD.vSlot] + p0 * 8,
    p1 - p0,
    s[0],
    s[1],
    s[2],
    s[3],
    s[4],
    s[5],
    s[6],
    s[7],
  );
}
