/**
 * One thread's share of a job on the SIMD kernels — a product `C = A · B` or
 * an Adam step — the same code on the training thread and on the helper
 * threads. The job sits in a small block of shared memory (32-bit words), so
 * a helper needs no message to start: the training thread writes the job,
 * opens it, bumps its number and wakes the helpers (see {@link CLOSED}).
 * Threads take the job in chunks — whole 8-column panels of C (or 6-row
 * panels when C is narrow), pairs of weights — so every element of C is one
 * thread's sum in one fixed order: the result does not depend on how many
 * threads there are, nor on which thread took which chunk.
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
  // An Adam update of `quads` quads of weights; its scalars are the float64 values at ADAM_SCALARS.
  w: 17,
  g: 18,
  mSlot: 19,
  vSlot: 20,
  quads: 21,
  /** The next chunk of the job a thread may take (see {@link runShare}). */
  next: 22,
  /** How many helpers are in the job, and {@link CLOSED} once the training thread takes no more. */
  state: 23,
  /** A product's next panel of A a thread may pack, and how many are packed (see {@link runShare}). */
  nextA: 24,
  packedA: 25,
} as const;

/**
 * Words of a filter-gradient job ({@link FILTER}), in the product's places:
 * `samples` samples, sample `b`'s input at `x + b·xSample` and output
 * gradient at `dy + b·dySample` (bytes), the rest `taps`'s arguments (see
 * filter_taps.ts); chunk `c` of `chunk` samples adds into its own partial sums
 * at `acc + c·accChunk`.
 */
export const FILTER_WORD = {
  x: 4,
  xSample: 5,
  dy: 6,
  dySample: 7,
  count: 8,
  cols: 9,
  colStep: 10,
  rowStep: 11,
  stride: 12,
  offsets: 13,
  taps: 14,
  acc: 15,
  accChunk: 16,
  samples: 17,
  chunk: 18,
} as const;

/**
 * Words of a convolution job ({@link CONVOLVE}), in the product's places:
 * `samples` samples, sample `b`'s input at `x + b·xSample` and its output at
 * `out + b·outSample` (bytes), the rest `convolve`'s arguments (see
 * convolve.ts).
 */
export const CONVOLVE_WORD = {
  x: 4,
  xSample: 5,
  positions: 6,
  count: 7,
  offsets: 8,
  taps: 9,
  w: 10,
  out: 11,
  outSample: 12,
  stride: 13,
  samples: 14,
  ranges: 15,
} as const;

/**
 * Words of a max-pool gradient job ({@link POOL_GRAD}): `samples` samples,
 * sample `b`'s input at `x + b·xSample`, its output gradient at
 * `dy + b·dySample` and its input gradient at `out + b·xSample` (bytes), the
 * rest `poolGrad`'s arguments (see max_pool_grad.ts).
 */
export const POOL_WORD = {
  x: 4,
  xSample: 5,
  dy: 6,
  dySample: 7,
  out: 8,
  windows: 9,
  cols: 10,
  fh: 11,
  fw: 12,
  groups: 13,
  colStep: 14,
  rowStep: 15,
  inRow: 16,
  samples: 17,
} as const;

/**
 * Words of an input-gradient job ({@link SCATTER}): `samples` samples,
 * sample `b`'s output gradient at `dy + b·dySample` and its input gradient
 * at `dx + b·dxSample` (bytes; zeros before the job), the rest `scatter`'s
 * arguments (see scatter.ts).
 */
export const SCATTER_WORD = {
  dy: 4,
  dySample: 5,
  dx: 6,
  dxSample: 7,
  dyPos: 8,
  dxPos: 9,
  count: 10,
  tapOffs: 11,
  taps: 12,
  depth: 13,
  w: 14,
  groups: 15,
  samples: 16,
} as const;

/** Job kinds (`ADAM32`: Adam with float32 gradients). */
export const PRODUCT = 0, ADAM = 1, FILTER = 2, CONVOLVE = 3, POOL_GRAD = 4, SCATTER = 5, ADAM32 = 6;

/**
 * The state word's flag for a closed job. The training thread writes a job
 * while it is closed, opens it (clears the flag) and bumps the job number;
 * a helper that sees the number joins (adds one to the state) unless the
 * job is closed already; the training thread, done with its own share,
 * closes the job and waits only for the helpers that joined. So it never
 * waits for a helper to wake up (~80 µs from sleep, more than a small
 * product takes): a sleeping helper that wakes late finds the job closed,
 * or joins the next one and takes only chunks nobody took.
 */
export const CLOSED = 1 << 30;

/** Index (in a `Float64Array` over the control block) of Adam's eight scalars: b1, ob1, b2, ob2, c1, c2, eps, nlr. */
export const ADAM_SCALARS = 16;

/** Bytes the control block takes. */
export const CONTROL_BYTES = 256;

/** Depth of a packed block: 256 · 8 floats of B (8 KB) stay in L1 while A's panels stream from L2. */
export const KC = 256;

/** The bytes of scratch one thread needs for a product of `m` rows and depth `k` (all of A packed, one B panel). */
export function scratchBytes(m: number, k: number): number {
  return (Math.ceil(m / MR) * MR * Math.ceil(k / KC) * KC + KC * NR) * 4;
}

/**
 * Runs thread `t`'s share of the job in `ctl` with `kernels`: it takes
 * chunks of the job from a counter in the control block until none are
 * left, so any thread may do any part, a thread that joins late or runs
 * slower takes fewer, and a thread that joins after the last chunk does
 * nothing. Chunks are whole 8-column panels of C (the threads first pack A
 * once, together, its panels taken in chunks too), or 6-row panels of A when
 * C is narrower than one panel per thread, or quads of weights for Adam;
 * which thread computes a chunk does not change its values. Against fixed
 * halves, a wide MLP's eight products of a step ran 2–16% faster, on Deno
 * and Bun (interleaved runs, in alternating order). Packing A once instead
 * of on every thread ran the batch-norm MLP's epoch 188 → 174 ms on Deno and
 * 248 → 224 on Bun (processes alternating, 3–4 each; the dropout MLP's and
 * a wide MLP's did not move).
 */
export function runShare(kernels: Kernels, ctl: Int32Array, t: number): void {
  if (ctl[WORD.kind] === ADAM || ctl[WORD.kind] === ADAM32) return adamShare(kernels, ctl, ctl[WORD.kind] === ADAM32);
  if (ctl[WORD.kind] === FILTER) return filterShare(kernels, ctl);
  if (ctl[WORD.kind] === CONVOLVE) return convolveShare(kernels, ctl);
  if (ctl[WORD.kind] === POOL_GRAD) return poolGradShare(kernels, ctl);
  if (ctl[WORD.kind] === SCATTER) return scatterShare(kernels, ctl);
  const m = ctl[WORD.m], n = ctl[WORD.n], k = ctl[WORD.k], parts = ctl[WORD.parts];
  // A helper numbered past the job's threads (the limit was lowered after it started) has no scratch of its own.
  if (t >= parts) return;
  const a = ctl[WORD.a], aOuter = ctl[WORD.aOuter], aInner = ctl[WORD.aInner];
  const b = ctl[WORD.b], bOuter = ctl[WORD.bOuter], bInner = ctl[WORD.bInner];
  const c = ctl[WORD.c], ldc = ctl[WORD.ldc];
  const panelsA = Math.ceil(m / MR), panelsB = Math.ceil(n / NR);
  const shareA = panelsB >= parts && parts > 1;
  // Each thread's scratch: all of A's blocks packed (when the threads share C's columns, the first thread's holds
  // the one copy they all read), then one panel of B.
  const scratch = ctl[WORD.scratch] + t * ctl[WORD.scratchStride];
  const packA = shareA ? ctl[WORD.scratch] : scratch;
  // One block of A, packed: panels · MR rows · KC depth; B's panel goes after all of A's blocks.
  const blockA = panelsA * MR * KC * 4, packB = scratch + blockA * Math.ceil(k / KC);
  // Where A's row `row0` (a panel's first) starts in the block at depth k0: panels there are MR × its depth.
  const packedA = (k0: number, row0: number) => packA + (k0 / KC) * blockA + row0 * Math.min(KC, k - k0) * 4;
  // A's panels p0..p1 (packed) times B's panels q0..q1, block after block of depth.
  const product = (p0: number, p1: number, q0: number, q1: number) => {
    const row0 = p0 * MR;
    for (let k0 = 0; k0 < k; k0 += KC) {
      const depth = Math.min(KC, k - k0), at = packedA(k0, row0);
      for (let q = q0; q < q1; q++) {
        const col0 = q * NR;
        kernels.pack(b + col0 * bOuter + k0 * bInner, bOuter, bInner, Math.min(NR, n - col0), depth, packB, NR);
        kernels.panels(at, packB, c + row0 * ldc + col0 * 4, ldc, depth, p1 - p0, k0 > 0 ? 1 : 0);
      }
    }
  };
  // Packs A's rows of panels p0..p1 into their places in every block.
  const pack = (p0: number, p1: number) => {
    const row0 = p0 * MR, rows = Math.min(p1 * MR, m) - row0;
    for (let k0 = 0; k0 < k; k0 += KC) {
      const at = packedA(k0, row0);
      kernels.pack(a + row0 * aOuter + k0 * aInner, aOuter, aInner, rows, Math.min(KC, k - k0), at, MR);
    }
  };
  if (panelsB >= parts) {
    if (Atomics.load(ctl, WORD.next) >= panelsB) return;
    if (!shareA) pack(0, panelsA);
    else {
      // A packed once, its panels taken in chunks as C's are; every thread waits until all are packed (the chunks
      // taken are being packed by threads in the job: none waits on a thread that has not joined).
      const chunkA = Math.max(1, Math.ceil(panelsA / (parts * 4)));
      for (let p0; (p0 = Atomics.add(ctl, WORD.nextA, chunkA)) < panelsA;) {
        const p1 = Math.min(p0 + chunkA, panelsA);
        try {
          pack(p0, p1);
        } finally {
          // Counted even if packing failed: the others must not spin forever (the failure reaches the caller).
          Atomics.add(ctl, WORD.packedA, p1 - p0);
        }
      }
      while (Atomics.load(ctl, WORD.packedA) < panelsA);
    }
    const chunk = Math.max(1, Math.floor(panelsB / (parts * 8)));
    for (let q0; (q0 = Atomics.add(ctl, WORD.next, chunk)) < panelsB;) {
      product(0, panelsA, q0, Math.min(q0 + chunk, panelsB));
    }
    return;
  }
  const chunk = Math.max(1, Math.floor(panelsA / (parts * 4)));
  for (let p0; (p0 = Atomics.add(ctl, WORD.next, chunk)) < panelsA;) {
    const p1 = Math.min(p0 + chunk, panelsA);
    pack(p0, p1);
    product(p0, p1, 0, panelsB);
  }
}

/** Chunks of samples, each into its own partial sums: which thread takes a chunk does not change its values. */
function filterShare(kernels: Kernels, ctl: Int32Array): void {
  const w = FILTER_WORD, samples = ctl[w.samples], chunk = ctl[w.chunk], chunks = Math.ceil(samples / chunk);
  for (let c; (c = Atomics.add(ctl, WORD.next, 1)) < chunks;) {
    const acc = ctl[w.acc] + c * ctl[w.accChunk];
    for (let b = c * chunk, end = Math.min(b + chunk, samples); b < end; b++) {
      kernels.taps(
        ctl[w.x] + b * ctl[w.xSample],
        ctl[w.dy] + b * ctl[w.dySample],
        ctl[w.count],
        ctl[w.cols],
        ctl[w.colStep],
        ctl[w.rowStep],
        ctl[w.stride],
        ctl[w.offsets],
        ctl[w.taps],
        acc,
      );
    }
  }
}

/** One sample at a time: each output is one sample's, computed by one thread in one order. */
function convolveShare(kernels: Kernels, ctl: Int32Array): void {
  const w = CONVOLVE_WORD, samples = ctl[w.samples];
  for (let b; (b = Atomics.add(ctl, WORD.next, 1)) < samples;) {
    kernels.convolve(
      ctl[w.x] + b * ctl[w.xSample],
      ctl[w.positions],
      ctl[w.count],
      ctl[w.offsets],
      ctl[w.taps],
      ctl[w.w],
      ctl[w.out] + b * ctl[w.outSample],
      ctl[w.stride],
      ctl[w.ranges],
    );
  }
}

/** One sample at a time: each input gradient is one sample's, computed by one thread in one order. */
function scatterShare(kernels: Kernels, ctl: Int32Array): void {
  const w = SCATTER_WORD, samples = ctl[w.samples];
  for (let b; (b = Atomics.add(ctl, WORD.next, 1)) < samples;) {
    kernels.scatter(
      ctl[w.dy] + b * ctl[w.dySample],
      ctl[w.dx] + b * ctl[w.dxSample],
      ctl[w.dyPos],
      ctl[w.dxPos],
      ctl[w.count],
      ctl[w.tapOffs],
      ctl[w.taps],
      ctl[w.depth],
      ctl[w.w],
      ctl[w.groups],
    );
  }
}

/** Sixteen samples at a time (a sample of the MNIST CNN's first pool is a few microseconds' work). */
function poolGradShare(kernels: Kernels, ctl: Int32Array): void {
  const w = POOL_WORD, samples = ctl[w.samples], xSample = ctl[w.xSample], dySample = ctl[w.dySample];
  for (let b0; (b0 = Atomics.add(ctl, WORD.next, 16)) < samples;) {
    for (let b = b0, end = Math.min(b0 + 16, samples); b < end; b++) {
      kernels.poolGrad(
        ctl[w.x] + b * xSample,
        ctl[w.dy] + b * dySample,
        ctl[w.out] + b * xSample,
        ctl[w.windows],
        ctl[w.cols],
        ctl[w.fh],
        ctl[w.fw],
        ctl[w.groups],
        ctl[w.colStep],
        ctl[w.rowStep],
        ctl[w.inRow],
      );
    }
  }
}

/** Adam's quads of weights are taken this many at a time. */
const ADAM_CHUNK = 2048;

/** Quads of weights at a time; float32 gradients (`adam32`) or float64. */
function adamShare(kernels: Kernels, ctl: Int32Array, float32Gradients: boolean): void {
  const quads = ctl[WORD.quads],
    adam = float32Gradients ? kernels.adam32 : kernels.adam,
    gQuad = float32Gradients ? 16 : 32;
  const s = new Float64Array(ctl.buffer, ctl.byteOffset + ADAM_SCALARS * 8, 8);
  for (let q0; (q0 = Atomics.add(ctl, WORD.next, ADAM_CHUNK)) < quads;) {
    adam(
      ctl[WORD.w] + q0 * 16,
      ctl[WORD.g] + q0 * gQuad,
      ctl[WORD.mSlot] + q0 * 16,
      ctl[WORD.vSlot] + q0 * 16,
      Math.min(ADAM_CHUNK, quads - q0),
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
}

/**
 * A helper joins the job in the control block: `true` when it may run its
 * share, `false` when the training thread has closed the job already (it
 * then touches nothing of it). See {@link CLOSED}.
 */
export function join(ctl: Int32Array): boolean {
  if ((Atomics.add(ctl, WORD.state, 1) & CLOSED) === 0) return true;
  leave(ctl);
  return false;
}

/** A helper is done with the job it joined. */
export function leave(ctl: Int32Array): void {
  Atomics.sub(ctl, WORD.state, 1);
  Atomics.notify(ctl, WORD.state);
}
