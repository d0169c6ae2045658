/**
 * fitstream's WebAssembly SIMD kernels (kernels.ts) on one shared memory,
 * spread over the machine's cores: the training thread takes one share of
 * each job and helper threads (one per other core, up to
 * {@link MAX_HELPERS}) the rest. Helpers start at the first job big enough
 * to share, in the background; until they are ready the training thread
 * does all the work.
 * Every value is computed by one thread in one order, so results are the same
 * on one core or many (see share.ts).
 *
 * Arrays that live through an epoch (weights, gradients, optimizer state)
 * can be allocated in the shared memory itself ({@link SimdKernels.float32}),
 * so products read them and the optimizer updates them where they are,
 * without copies; the rest of the memory is scratch for one job at a time.
 *
 * @module
 */
import { kernelModule, type Kernels, MR, NR } from "./kernels.ts";
import {
  ADAM,
  ADAM32,
  ADAM_SCALARS,
  CLOSED,
  CONTROL_BYTES,
  CONVOLVE,
  CONVOLVE_WORD,
  FILTER,
  FILTER_WORD,
  isServerRuntime,
  POOL_GRAD,
  POOL_WORD,
  PRODUCT,
  runShare,
  SCATTER,
  SCATTER_WORD,
  scratchBytes,
  WORD,
} from "./share.ts";
import type { HelperStart } from "./helper_worker.ts";
import { ACTIVATION_LIST } from "../activations.ts";
import { cubesAreFloat32, MAX_ROWS, WORK_SLOTS } from "./batch_norm.ts";
import { tanhTables } from "./lstm_cell.ts";

/** Whether the activation with this registry code runs in the kernels' epilogues. */
export function hasSimdEpilogue(activation: number): boolean {
  return ACTIVATION_LIST[activation]?.simd !== undefined;
}

/** At most this many helper threads. */
export const MAX_HELPERS = 7;

/**
 * Products from this many multiply-adds are shared with the helpers; below, waking them costs more than it saves.
 * Raised from 2^18: the benchmark LSTM's per-step products (64 rows × 32 units × 128 gate columns = 2^18, 150 of
 * them each way a step) ran each epoch 1.97× as long on Deno and 1.75× on Bun shared with one helper as on this
 * thread alone (epochs of 1,024 rows alternating threads 2 and 1 in one process, medians of 14; a loaded 2-core
 * machine): a job that small is over before a helper wakes. (With this, two threads still ran its epoch 1.32× as
 * long as one on Deno, through the shared once-a-step products of 3.3M multiply-adds: for an idle machine to settle.)
 */
export const SHARED_MIN_MACS = 1 << 19;

/** Adam updates of this many weights are shared with the helpers. */
export const SHARED_MIN_WEIGHTS = 1 << 14;

const PAGE = 65536;

/**
 * lstm_cell.ts's tanh tables (2^(−i/64), then 2^(−i): 128 float64s) live
 * right after the control block, written once when the memory is made (no
 * array of {@link SimdKernels.float64}'s, so `bytesInUse` never counts them);
 * arrays start after them.
 */
const TANH_TABLES_AT = CONTROL_BYTES, TANH_TABLE_VALUES = 128, ARRAYS_AT = TANH_TABLES_AT + TANH_TABLE_VALUES * 8;
/** The shared memory may grow to 1 GiB; a job that needs more is left to the caller's JS (it gets `undefined`). */
const MAX_PAGES = 16384;

/** A matrix operand: row-major values of the matrix, or of its transpose when `transposed`. */
export interface Operand {
  values: Float64Array | Float32Array;
  transposed: boolean;
}

/** A product's values: row `r` of C starts at `r · stride` (the stride rounds the width up). */
export interface Product {
  values: Float32Array;
  stride: number;
  /** Whether the values were written into the `into` array {@link SimdKernels.multiply} was given. */
  into: boolean;
  /** Copies the product into `out` (row-major, float64), in the kernels. */
  widen(out: Float64Array): boolean;
  /**
   * `out[r, c] = act(C[r, c] + bias[c])` (row-major, float64; no bias when
   * `undefined`; `activation` a code of the registry, `../activations.ts`),
   * in the kernels; `false` (nothing done) where the activation has no SIMD
   * code or an array lives outside the kernels' memory.
   */
  addBias(bias: Float64Array | undefined, out: Float64Array, activation: number): boolean;
  /**
   * `out[r, c] = C[r, c] · act'(below[r, c])` (the slope from the output
   * `below`), added into `biasGrad[c]` row after row when given, in the
   * kernels; `false` as for {@link addBias}.
   */
  scaleBySlope(below: Float64Array, out: Float64Array, activation: number, biasGrad: Float64Array | undefined): boolean;
}

/**
 * The arrays of one LSTM time step ({@link SimdKernels.lstmStep}), float64
 * in the kernels' memory: `gates` (cells × 4u: the input projection, then
 * the gates' kept values), `cells`, `actCells`, `hPrev` (cells × u), `h`
 * (n × u), `bias` (4u) or none, and `z` (h·U, a product's values) or none;
 * `cell` is row 0's cell index for this step, a row's cells `steps` apart,
 * and `previous` the cells from one step's cell to the previous step's
 * (unread at the `first` step).
 */
export interface LstmStepArrays {
  gates: Float64Array;
  z?: { values: Float32Array; stride: number };
  bias?: Float64Array;
  cells: Float64Array;
  actCells: Float64Array;
  hPrev: Float64Array;
  h: Float64Array;
  n: number;
  steps: number;
  units: number;
  cell: number;
  first: boolean;
  previous: number;
}

/**
 * A convolution filter gradient's job (see filter_taps.ts), sizes in floats:
 * `samples` samples of `count` output positions (`cols` a row); the input
 * moves `colStep` a column and `rowStep` a row; `offsets` holds each tap's
 * offset in the input (their count a multiple of `TAP_BLOCK`); output
 * gradient rows hold `stride` channels (a multiple of 8). `fill` writes the
 * (padded) inputs, `xSample` and `dySample` floats a sample, into the views
 * it is given (their old contents are garbage). Sample chunks of `chunk` sum
 * into their own partial sums.
 */
export interface TapsJob {
  samples: number;
  xSample: number;
  dySample: number;
  count: number;
  cols: number;
  colStep: number;
  rowStep: number;
  stride: number;
  offsets: Int32Array;
  chunk: number;
  fill(x: Float32Array, dy: Float32Array): void;
}

/**
 * A convolution's job (see convolve.ts), sizes in floats: `samples` samples
 * of `xSample` (padded) input, which `fill` writes into the view it is given
 * (its old contents are garbage); `positions` holds each output position's
 * offset in a sample's input (their count a multiple of `POSITION_BLOCK`),
 * `offsets` each tap's from there; `ranges` the first and past the last tap
 * each block of positions sums; `weights` are packed `[group of 8
 * channels][tap][8]`, `stride` channels (a multiple of 8) an output row.
 */
export interface ConvolveJob {
  samples: number;
  xSample: number;
  positions: Int32Array;
  offsets: Int32Array;
  ranges: Int32Array;
  weights: Float32Array;
  stride: number;
  fill(x: Float32Array): void;
}

/**
 * An input gradient's job (see scatter.ts), sizes in floats: `samples`
 * samples of `dySample` output gradient, which `fill` writes into the view it
 * is given, and of `dxSample` input gradient (zeros before the job; past the
 * input's own values, room the padding positions of `dxPos` write to);
 * `dyPos` and `dxPos` hold each position's offsets in a sample's output
 * gradient and input (their count a multiple of `SCATTER_BLOCK`), `tapOffs`
 * each tap's from there in the input; `weights` are packed `[group of 8 input
 * channels][tap][depth][8]`.
 */
export interface ScatterJob {
  samples: number;
  dySample: number;
  dxSample: number;
  dyPos: Int32Array;
  dxPos: Int32Array;
  tapOffs: Int32Array;
  depth: number;
  groups: number;
  weights: Float32Array;
  fill(dy: Float32Array): void;
}

/** A max pool's sizes: windows `fh` × `fw`, `outHeight` × `outWidth` of them at strides `sh`, `sw`. */
export interface PoolSizes {
  inHeight: number;
  inWidth: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  fh: number;
  fw: number;
  sh: number;
  sw: number;
}

/**
 * A max-pool gradient's job (see max_pool_grad.ts), sizes in floats: `x`
 * and `dy` (NHWC, `channels` a multiple of 4) of `samples` samples, windows
 * that do not overlap, from the input's first pixel.
 */
export interface PoolGradJob extends PoolSizes {
  x: Float32Array;
  dy: Float32Array;
  samples: number;
}

/**
 * A batch normalization's training forward pass (see batch_norm.ts): `rows`
 * rows of `channels` channels (`x`, `output`, `dev`: float64 rows; `rsqrt`:
 * float64 per channel; γ, β and the moving averages: float32), `epsilon` the
 * layer's, `decay` = fround(1 − momentum).
 */
export interface BatchNormForward {
  x: Float64Array;
  output: Float64Array;
  dev: Float64Array;
  rsqrt: Float64Array;
  gamma: Float32Array;
  beta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
  rows: number;
  channels: number;
  epsilon: number;
  decay: number;
}

/** A batch normalization's backward pass (see batch_norm.ts), over what its {@link BatchNormForward} left. */
export interface BatchNormBackward {
  dy: Float64Array;
  dev: Float64Array;
  rsqrt: Float64Array;
  gamma: Float32Array;
  gradInput: Float64Array;
  gammaGrad: Float64Array;
  betaGrad: Float64Array;
  rows: number;
  channels: number;
}

/** Adam's scalars for one step, as host_optimizer.ts computes them. */
export interface AdamScalars {
  b1: number;
  ob1: number;
  b2: number;
  ob2: number;
  /** The bias corrections 1 − β1ᵗ and 1 − β2ᵗ, float32 values as tfjs keeps them. */
  c1: number;
  c2: number;
  eps: number;
  /** −learning rate. */
  nlr: number;
}

type Helper = { terminate(): unknown };
type Block = { at: number; end: number };

const align = (bytes: number) => Math.ceil(bytes / 16) * 16;

/** The kernels, their memory and their helpers. Internal. */
export class SimdKernels {
  readonly fused: boolean;
  #memory: WebAssembly.Memory;
  #kernels: Kernels;
  #module: WebAssembly.Module;
  #ctl: Int32Array;
  #scalars: Float64Array;
  #f32: Float32Array;
  #helpers: Helper[] = [];
  #wanted: number;
  /** At most this many helpers take part in a job, and the memory grows to at most this many pages (see limit). */
  #cap: number;
  #maxPages = MAX_PAGES;
  #job = 0;
  #canWait: boolean;
  #starting: Promise<void> | undefined;
  #blocks: Block[] = [];
  #owned = new WeakSet<ArrayBufferView>();

  constructor(helpers: number) {
    // Unrolled twice: +10% on Deno (36 -> 40 GFLOP/s on one core), the same on Bun (where 4 lost 20%).
    const withFma = kernelModule(true, MAX_PAGES, 2);
    this.fused = WebAssembly.validate(withFma);
    this.#module = new WebAssembly.Module(this.fused ? withFma : kernelModule(false, MAX_PAGES, 2));
    this.#memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(this.#module, { env: { memory: this.#memory } });
    this.#kernels = instance.exports as unknown as Kernels;
    this.#ctl = new Int32Array(this.#memory.buffer, 0, CONTROL_BYTES / 4);
    new Float64Array(this.#memory.buffer, TANH_TABLES_AT, TANH_TABLE_VALUES).set(tanhTables());
    this.#scalars = new Float64Array(this.#memory.buffer, ADAM_SCALARS * 8, 8);
    this.#f32 = new Float32Array(this.#memory.buffer);
    this.#wanted = helpers;
    this.#cap = helpers;
    this.#canWait = canWaitHere(this.#ctl);
    this.#ctl[WORD.state] = CLOSED;
  }

  /** Helpers ready for jobs. */
  get helpers(): number {
    return Atomics.load(this.#ctl, WORD.ready);
  }

  /** Starts the helpers (once); resolves when they are all ready, or when starting them failed. */
  start(): Promise<void> {
    return this.#starting ??= (async () => {
      const wanted = this.#wanted;
      for (let i = this.#helpers.length + 1; i <= wanted; i++) {
        const start: HelperStart = { memory: this.#memory, module: this.#module, index: i };
        const helper = await startHelper(start);
        if (!helper) break;
        this.#helpers.push(helper);
      }
      this.#wanted = this.#helpers.length;
      for (let waited = 0; this.helpers < this.#wanted && waited < 10_000; waited += 5) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
  }

  /**
   * Bounds what the kernels take from here on: at most `helpers` helper
   * threads in a job (more are started if fewer run), and at most `maxPages`
   * pages of memory (64 KiB each; memory already taken is kept, and a job
   * that needs more is left to the caller's JS).
   */
  limit(helpers: number, maxPages: number): void {
    this.#cap = helpers;
    this.#maxPages = Math.min(maxPages, MAX_PAGES);
    if (helpers > this.#wanted) {
      this.#wanted = helpers;
      const started = this.#starting;
      // Started again once the current start has ended, for the helpers still missing.
      if (started) this.#starting = started.then(() => (this.#starting = undefined, this.start()));
    }
  }

  /** The most threads a job takes part with now (this one and the helpers ready, within the limit). */
  get jobThreads(): number {
    return this.#parts(true);
  }

  /** Whether the helpers were asked to start (by {@link start} or a job big enough to share). Internal, for tests. */
  get started(): boolean {
    return this.#starting !== undefined || this.#helpers.length > 0;
  }

  /** The threads the last job (product or Adam update) ran on. Internal, for tests. */
  get lastJobThreads(): number {
    return this.#ctl[WORD.parts];
  }

  /** Helpers a job of this size takes part with. */
  #parts(shared: boolean): number {
    return shared ? 1 + Math.min(this.helpers, this.#cap) : 1;
  }

  /**
   * {@link #parts} for a job about to run, starting the helpers at the first
   * job big enough to share: a model whose jobs are all small (the tutorial's
   * at batch 32) never starts a thread it would not use.
   */
  #share(shared: boolean): number {
    if (shared && !this.#starting && this.#wanted > 0) void this.start();
    return this.#parts(shared);
  }

  /**
   * A float32 array in the shared memory (zeros), or `undefined` when the
   * memory is full; give it back with {@link free}. With `room`, the block
   * behind it holds that many values (a product written into the array with
   * {@link multiply}'s `into` needs room for whole tiles of rows).
   */
  float32(length: number, room = length): Float32Array | undefined {
    const at = this.#allocate(Math.max(length, room) * 4);
    if (at === undefined) return undefined;
    const view = new Float32Array(this.#memory.buffer, at, length).fill(0);
    this.#owned.add(view);
    return view;
  }

  /** A float64 array in the shared memory (zeros), as {@link float32}. */
  float64(length: number): Float64Array | undefined {
    const at = this.#allocate(length * 8);
    if (at === undefined) return undefined;
    const view = new Float64Array(this.#memory.buffer, at, length).fill(0);
    this.#owned.add(view);
    return view;
  }

  /**
   * `g[r, c] *= act'(below[r, c])` in place, for `rows` × `cols` float64
   * gradients, and added into `biasGrad[c]` row after row when given (it
   * may be `undefined`); `activation` a code of the registry, the slope from
   * the output `below` (unread for linear, whose slope is 1). The JS loops'
   * float64 operations in their order, so bit for bit theirs; `false`
   * (nothing done) where the activation has no SIMD code, an array lives
   * outside this memory or is shorter than the sizes say.
   */
  scaleBySlope(
    g: Float64Array,
    below: Float64Array,
    rows: number,
    cols: number,
    activation: number,
    biasGrad: Float64Array | undefined,
  ): boolean {
    const here = this.#holds, size = rows * cols;
    if (!hasSimdEpilogue(activation) || !here(g, size) || !here(below, size)) return false;
    if (biasGrad && !here(biasGrad, cols)) return false;
    const at = g.byteOffset;
    this.#kernels.slopes64(at, cols * 8, below.byteOffset, at, rows, cols, activation, biasGrad?.byteOffset ?? 0);
    return true;
  }

  /** Gives back an array from {@link float32} or {@link float64} (others are ignored). */
  free(view: ArrayBufferView): void {
    if (!this.#owned.delete(view)) return;
    const i = this.#blocks.findIndex((b) => b.at === view.byteOffset);
    if (i >= 0) this.#blocks.splice(i, 1);
  }

  /** Bytes of the shared memory held by arrays from {@link float32} and {@link float64} not yet given back. */
  get bytesInUse(): number {
    let bytes = 0;
    for (const b of this.#blocks) bytes += b.end - b.at;
    return bytes;
  }

  /** Whether `view` lives in the shared memory. */
  owns(view: ArrayBufferView): boolean {
    return this.#owned.has(view);
  }

  /** The bytes of the block behind `view` from its start (0 for a view not from {@link float32} or {@link float64}). */
  #room(view: ArrayBufferView): number {
    if (!this.#owned.has(view)) return 0;
    const block = this.#blocks.find((b) => b.at === view.byteOffset);
    return block ? block.end - block.at : 0;
  }

  #allocate(bytes: number): number | undefined {
    bytes = align(Math.max(bytes, 16));
    let at = ARRAYS_AT, i = 0;
    for (; i < this.#blocks.length; i++) {
      if (this.#blocks[i].at - at >= bytes) break;
      at = this.#blocks[i].end;
    }
    if (!this.#reserve(at + bytes)) return undefined;
    this.#blocks.splice(i, 0, { at, end: at + bytes });
    return at;
  }

  /** The first byte after the arrays: scratch for one job starts here. */
  get #top(): number {
    return this.#blocks.length ? this.#blocks[this.#blocks.length - 1].end : ARRAYS_AT;
  }

  /**
   * `C (m×n) = A (m×k) · B (k×n)` in float32; the values are valid until the
   * next job or allocation. Operands in the shared memory are read where they
   * are (float64 ones narrowed there); others are copied in (as float32).
   * `undefined` when they do not fit the memory. With `into` (an array from
   * {@link float32} with room for `m` rounded up to whole tiles of {@link MR}
   * rows), C is written there when its width is a multiple of {@link NR}
   * (then the product's `values` are `into`'s memory, stride `n`).
   */
  multiply(a: Operand, b: Operand, m: number, k: number, n: number, into?: Float32Array): Product | undefined {
    if (n === 1 && m >= 1 && k >= 1) return this.#column(a, b, m, k);
    const stride = Math.ceil(n / NR) * NR, rows = Math.ceil(m / MR) * MR;
    const parts = this.#share(m * k * n >= SHARED_MIN_MACS);
    const aAt = align(this.#top), bAt = aAt + (this.#inPlace(a.values) ? 0 : align(m * k * 4));
    const after = bAt + (this.#inPlace(b.values) ? 0 : align(k * n * 4));
    // Into `into` where its rows are the product's (no padding) and its block has room for the last tile's rows.
    const direct = into !== undefined && stride === n && into.length >= m * n && this.#room(into) >= rows * stride * 4;
    const cAt = direct ? into.byteOffset : after;
    const scratchAt = direct ? after : cAt + align(rows * stride * 4), scratchStride = align(scratchBytes(m, k));
    if (!this.#reserve(scratchAt + parts * scratchStride)) return undefined;
    const ctl = this.#ctl;
    ctl[WORD.kind] = PRODUCT;
    ctl[WORD.a] = this.#place(a.values, m * k, aAt);
    ctl[WORD.aOuter] = a.transposed ? 4 : k * 4;
    ctl[WORD.aInner] = a.transposed ? m * 4 : 4;
    ctl[WORD.b] = this.#place(b.values, k * n, bAt);
    ctl[WORD.bOuter] = b.transposed ? k * 4 : 4;
    ctl[WORD.bInner] = b.transposed ? 4 : n * 4;
    ctl[WORD.c] = cAt;
    ctl[WORD.ldc] = stride * 4;
    ctl[WORD.m] = m;
    ctl[WORD.n] = n;
    ctl[WORD.k] = k;
    ctl[WORD.scratch] = scratchAt;
    ctl[WORD.scratchStride] = scratchStride;
    this.#run(parts);
    return this.#product(cAt, stride, m, n, direct);
  }

  /**
   * A product with one column (`n` = 1), by column.ts's kernels on this
   * thread: A read where it lies in this memory (float64 narrowed as read),
   * else copied in as float32; no packing. Every one-column product takes
   * this way, so its sums do not depend on where A lies (the transposed
   * layout's are the panels' too, bit for bit; the other sums four lanes).
   * C's rows are {@link NR} floats apart, as the panels leave them (their
   * padding is not written). The tutorial's output layer (512 × 64 · 64 × 1
   * forward, 64 × 512 · 512 × 1 kernel gradient), one call in a loop of
   * 3,000: 29 → 9 µs and 34 → 10 on Deno, 32 → 15 and 32 → 11 on Bun; its
   * batch-512 epoch 7.3 → 5.85 ms on Deno, 7.1 → 5.8 on Bun (processes
   * alternating, four each).
   */
  #column(a: Operand, b: Operand, m: number, k: number): Product | undefined {
    const inPlace = this.#owned.has(a.values), float64 = inPlace && a.values instanceof Float64Array;
    const stride = NR, aAt = align(this.#top), bAt = aAt + (inPlace ? 0 : align(m * k * 4));
    const cAt = bAt + (this.#inPlace(b.values) ? 0 : align(k * 4));
    if (!this.#reserve(cAt + m * stride * 4)) return undefined;
    const aPlaced = inPlace ? a.values.byteOffset : this.#place(a.values, m * k, aAt);
    const bPlaced = this.#place(b.values, k, bAt), size = float64 ? 8 : 4;
    const kernels = this.#kernels;
    const [dots, lanes] = float64 ? [kernels.dots, kernels.lanes] : [kernels.dots32, kernels.lanes32];
    if (a.transposed) lanes(aPlaced, m * size, bPlaced, cAt, stride * 4, m, k);
    else dots(aPlaced, k * size, bPlaced, cAt, stride * 4, m, k);
    return this.#product(cAt, stride, m, 1, false);
  }

  /** The {@link Product} of `m` × `n` values at `cAt`, rows `stride` floats apart. */
  #product(cAt: number, stride: number, m: number, n: number, direct: boolean): Product {
    const kernels = this.#kernels;
    const owned = this.#owned;
    // Each epilogue runs only on arrays in this memory: their address, 0 for none, −1 for one outside (arrays in the
    // memory never start at 0, the control block's place).
    const at = (view: Float64Array | undefined) => view === undefined ? 0 : owned.has(view) ? view.byteOffset : -1;
    return {
      values: this.#f32.subarray(cAt / 4, cAt / 4 + m * stride),
      stride,
      into: direct,
      widen(out: Float64Array): boolean {
        const outAt = at(out);
        if (outAt <= 0) return false;
        kernels.widen(cAt, stride * 4, outAt, m, n);
        return true;
      },
      addBias(bias: Float64Array | undefined, out: Float64Array, activation: number): boolean {
        const biasAt = at(bias), outAt = at(out);
        if (!hasSimdEpilogue(activation) || biasAt < 0 || outAt <= 0) return false;
        kernels.bias(cAt, stride * 4, biasAt, outAt, m, n, activation);
        return true;
      },
      scaleBySlope(below: Float64Array, out: Float64Array, activation: number, biasGrad: Float64Array | undefined) {
        const belowAt = at(below), outAt = at(out), biasAt = at(biasGrad);
        if (!hasSimdEpilogue(activation) || belowAt <= 0 || outAt <= 0 || biasAt < 0) return false;
        kernels.slopes(cAt, stride * 4, belowAt, outAt, m, n, activation, biasAt);
        return true;
      },
    };
  }

  /**
   * Runs a filter gradient's job: the partial sums of each chunk of samples,
   * `[chunk][tap][stride]` (float32), valid until the next job or allocation;
   * `undefined` when they do not fit the memory.
   */
  filterTaps(job: TapsJob): Float32Array | undefined {
    const { samples, xSample, dySample, stride, offsets } = job;
    const chunks = Math.ceil(samples / job.chunk), accChunk = offsets.length * stride;
    const xAt = align(this.#top), dyAt = xAt + align(samples * xSample * 4);
    const offsetsAt = dyAt + align(samples * dySample * 4), accAt = offsetsAt + align(offsets.length * 4);
    // 16 bytes to spare past the partial sums (every read stays inside the arrays).
    if (!this.#reserve(accAt + chunks * accChunk * 4 + 16)) return undefined;
    const f32 = this.#f32;
    job.fill(f32.subarray(xAt / 4, xAt / 4 + samples * xSample), f32.subarray(dyAt / 4, dyAt / 4 + samples * dySample));
    new Int32Array(this.#memory.buffer, offsetsAt, offsets.length).set(offsets.map((o) => o * 4));
    const acc = f32.subarray(accAt / 4, accAt / 4 + chunks * accChunk).fill(0);
    const ctl = this.#ctl, w = FILTER_WORD;
    ctl[WORD.kind] = FILTER;
    ctl[w.x] = xAt;
    ctl[w.xSample] = xSample * 4;
    ctl[w.dy] = dyAt;
    ctl[w.dySample] = dySample * 4;
    ctl[w.count] = job.count;
    ctl[w.cols] = job.cols;
    ctl[w.colStep] = job.colStep * 4;
    ctl[w.rowStep] = job.rowStep * 4;
    ctl[w.stride] = stride * 4;
    ctl[w.offsets] = offsetsAt;
    ctl[w.taps] = offsets.length;
    ctl[w.acc] = accAt;
    ctl[w.accChunk] = accChunk * 4;
    ctl[w.samples] = samples;
    ctl[w.chunk] = job.chunk;
    this.#run(this.#share(chunks > 1));
    return acc;
  }

  /**
   * Runs a convolution's job: the outputs, `[sample][position][stride]`
   * (float32), valid until the next job or allocation; `undefined` when they
   * do not fit the memory.
   */
  convolve(job: ConvolveJob): Float32Array | undefined {
    const { samples, xSample, positions, offsets, ranges, weights, stride } = job;
    const outSample = positions.length * stride;
    const xAt = align(this.#top), positionsAt = xAt + align(samples * xSample * 4);
    const offsetsAt = positionsAt + align(positions.length * 4), rangesAt = offsetsAt + align(offsets.length * 4);
    const wAt = rangesAt + align(ranges.length * 4), outAt = wAt + align(weights.length * 4);
    if (!this.#reserve(outAt + samples * outSample * 4)) return undefined;
    const f32 = this.#f32;
    job.fill(f32.subarray(xAt / 4, xAt / 4 + samples * xSample));
    new Int32Array(this.#memory.buffer, positionsAt, positions.length).set(positions.map((p) => p * 4));
    new Int32Array(this.#memory.buffer, offsetsAt, offsets.length).set(offsets.map((o) => o * 4));
    new Int32Array(this.#memory.buffer, rangesAt, ranges.length).set(ranges);
    f32.set(weights, wAt / 4);
    const ctl = this.#ctl, w = CONVOLVE_WORD;
    ctl[WORD.kind] = CONVOLVE;
    ctl[w.x] = xAt;
    ctl[w.xSample] = xSample * 4;
    ctl[w.positions] = positionsAt;
    ctl[w.count] = positions.length;
    ctl[w.offsets] = offsetsAt;
    ctl[w.taps] = offsets.length;
    ctl[w.w] = wAt;
    ctl[w.out] = outAt;
    ctl[w.outSample] = outSample * 4;
    ctl[w.stride] = stride * 4;
    ctl[w.samples] = samples;
    ctl[w.ranges] = rangesAt;
    this.#run(this.#share(samples > 1));
    return f32.subarray(outAt / 4, outAt / 4 + samples * outSample);
  }

  /**
   * Runs an input gradient's job: the input gradients, `[sample][dxSample]`
   * (float32), valid until the next job or allocation; `undefined` when they
   * do not fit the memory.
   */
  scatter(job: ScatterJob): Float32Array | undefined {
    const { samples, dySample, dxSample, dyPos, dxPos, tapOffs, weights } = job;
    const dyAt = align(this.#top), dyPosAt = dyAt + align(samples * dySample * 4);
    const dxPosAt = dyPosAt + align(dyPos.length * 4), tapsAt = dxPosAt + align(dxPos.length * 4);
    const wAt = tapsAt + align(tapOffs.length * 4), dxAt = wAt + align(weights.length * 4);
    if (!this.#reserve(dxAt + samples * dxSample * 4)) return undefined;
    const f32 = this.#f32;
    job.fill(f32.subarray(dyAt / 4, dyAt / 4 + samples * dySample));
    new Int32Array(this.#memory.buffer, dyPosAt, dyPos.length).set(dyPos);
    new Int32Array(this.#memory.buffer, dxPosAt, dxPos.length).set(dxPos);
    new Int32Array(this.#memory.buffer, tapsAt, tapOffs.length).set(tapOffs);
    f32.set(weights, wAt / 4);
    const dx = f32.subarray(dxAt / 4, dxAt / 4 + samples * dxSample).fill(0);
    const ctl = this.#ctl, w = SCATTER_WORD;
    ctl[WORD.kind] = SCATTER;
    ctl[w.dy] = dyAt;
    ctl[w.dySample] = dySample * 4;
    ctl[w.dx] = dxAt;
    ctl[w.dxSample] = dxSample * 4;
    ctl[w.dyPos] = dyPosAt;
    ctl[w.dxPos] = dxPosAt;
    ctl[w.count] = dyPos.length;
    ctl[w.tapOffs] = tapsAt;
    ctl[w.taps] = tapOffs.length;
    ctl[w.depth] = job.depth;
    ctl[w.w] = wAt;
    ctl[w.groups] = job.groups;
    ctl[w.samples] = samples;
    this.#run(this.#share(samples > 1));
    return dx;
  }

  /**
   * Runs a max-pool gradient's job: the input gradient (laid out as `x`),
   * valid until the next job or allocation; inputs in no window get zeros.
   * `undefined` when it does not fit the memory.
   */
  poolGrad(job: PoolGradJob): Float32Array | undefined {
    const { samples, inHeight, inWidth, channels, outHeight, outWidth } = job;
    const xSample = inHeight * inWidth * channels, dySample = outHeight * outWidth * channels;
    const xAt = align(this.#top),
      dyAt = xAt + align(samples * xSample * 4),
      outAt = dyAt + align(samples * dySample * 4);
    if (!this.#reserve(outAt + samples * xSample * 4)) return undefined;
    const f32 = this.#f32;
    f32.set(job.x.subarray(0, samples * xSample), xAt / 4);
    f32.set(job.dy.subarray(0, samples * dySample), dyAt / 4);
    const out = f32.subarray(outAt / 4, outAt / 4 + samples * xSample);
    if (outHeight * job.sh !== inHeight || outWidth * job.sw !== inWidth || job.fh !== job.sh || job.fw !== job.sw) {
      out.fill(0); // inputs outside every window
    }
    const ctl = this.#ctl, w = POOL_WORD;
    ctl[WORD.kind] = POOL_GRAD;
    ctl[w.x] = xAt;
    ctl[w.xSample] = xSample * 4;
    ctl[w.dy] = dyAt;
    ctl[w.dySample] = dySample * 4;
    ctl[w.out] = outAt;
    ctl[w.windows] = outHeight * outWidth;
    ctl[w.cols] = outWidth;
    ctl[w.fh] = job.fh;
    ctl[w.fw] = job.fw;
    ctl[w.groups] = channels / 4;
    ctl[w.colStep] = job.sw * channels * 4;
    ctl[w.rowStep] = job.sh * inWidth * channels * 4;
    ctl[w.inRow] = inWidth * channels * 4;
    ctl[w.samples] = samples;
    this.#run(this.#share(samples > 16));
    return out;
  }

  /**
   * The dropout kind's training pass on this thread (see dropout.ts): the
   * next `count` of Alea's numbers from the state `state()` gives (`[s0, s1,
   * s2, carry]`; asked for only when the kernel runs: an unseeded layer draws
   * `Math.random` for it, once a pass, as tfjs does), each
   * rounded to float32, kept from `kept` on (mask `scale`, else 0), and
   * `out = x · mask` — bit for bit the kind's JS loops; `false` (nothing
   * done) unless the three arrays live in the shared memory. A call of
   * 128 × 512 values (the dropout MLP's), arrays in this memory, against the
   * JS loops on them (scratch loop of 300 calls): 0.63 → 0.13 ms on Deno,
   * 0.48 → 0.10 on Bun; the MLP's epoch 410 → 376 ms on Deno, 491 → 469 on
   * Bun (processes alternating, three each).
   */
  dropout(
    x: Float64Array,
    out: Float64Array,
    mask: Float64Array,
    count: number,
    state: () => readonly number[],
    kept: number,
    scale: number,
  ): boolean {
    const here = this.#holds;
    if (count < 1 || !here(x, count) || !here(out, count) || !here(mask, count)) return false;
    const [s0, s1, s2, carry] = state();
    this.#kernels.dropout(x.byteOffset, out.byteOffset, mask.byteOffset, count, s0, s1, s2, carry, kept, scale);
    return true;
  }

  /**
   * One time step of an LSTM's forward pass on this thread (see
   * lstm_cell.ts: tanh and hardSigmoid, bit for bit lstm_math.ts's loop),
   * for `n` rows whose cells for this step lie `steps` cells apart from
   * `first cell` on; `false` (nothing done) unless every array lives in this
   * memory, `z` (h·U, absent at the first step) is a product's values here,
   * and `units` is even.
   */
  lstmStep(a: LstmStepArrays): boolean {
    const { n, steps, units: u, cell } = a, here = this.#holds, cells = n * steps * u;
    if (
      u < 2 || u % 2 !== 0 || n < 1 || !here(a.gates, 4 * cells) || !here(a.cells, cells) || !here(a.actCells, cells)
    ) {
      return false;
    }
    if (!here(a.hPrev, cells) || !here(a.h, n * u) || (a.bias && !here(a.bias, 4 * u))) return false;
    const z = a.z;
    if (z && (z.values.buffer !== this.#f32.buffer || z.stride < 4 * u)) return false;
    this.#kernels.lstmStep(
      a.gates.byteOffset + cell * 4 * u * 8,
      z ? z.values.byteOffset : 0,
      z ? z.stride * 4 : 0,
      a.bias?.byteOffset ?? 0,
      a.cells.byteOffset + cell * u * 8,
      a.actCells.byteOffset + cell * u * 8,
      a.hPrev.byteOffset + cell * u * 8,
      a.h.byteOffset,
      TANH_TABLES_AT,
      n,
      steps,
      u,
      a.first ? 1 : 0,
      a.previous * u * 8,
    );
    return true;
  }

  /**
   * The batch normalization kind's training forward pass on this thread, bit
   * for bit its JS loops; `false` (nothing done) unless every array lives in
   * the shared memory and `rows` is 1 to 2²⁴.
   */
  batchNormForward(a: BatchNormForward): boolean {
    const { rows, channels } = a, values = rows * channels, here = this.#holds;
    if (
      !(rows >= 1 && rows <= MAX_ROWS) || !here(a.x, values) || !here(a.output, values) || !here(a.dev, values) ||
      !here(a.rsqrt, channels) || !here(a.gamma, channels) || !here(a.beta, channels) ||
      !here(a.movingMean, channels) || !here(a.movingVariance, channels)
    ) return false;
    const work = this.#batchNormWork(channels);
    if (work === undefined) return false;
    // The kind's `share`: a power-of-two count multiplies by its reciprocal, others divide.
    const divide = (rows & (rows - 1)) === 0 ? 0 : 1;
    this.#kernels.bnForward(
      a.x.byteOffset,
      a.output.byteOffset,
      a.dev.byteOffset,
      a.rsqrt.byteOffset,
      a.gamma.byteOffset,
      a.beta.byteOffset,
      a.movingMean.byteOffset,
      a.movingVariance.byteOffset,
      rows,
      channels,
      work,
      divide,
      divide ? rows : 1 / rows,
      a.epsilon,
      Math.fround(a.epsilon),
      a.decay,
    );
    return true;
  }

  /**
   * The batch normalization kind's backward pass on this thread, bit for bit
   * its JS loops; `false` (nothing done) unless every array lives in the
   * shared memory, `rows` is 1 to 2²⁴ and each channel's −½·rsqrt³ is a
   * float32 value (a variance below ~10²⁵).
   */
  batchNormBackward(a: BatchNormBackward): boolean {
    const { rows, channels } = a, values = rows * channels, here = this.#holds;
    if (
      !(rows >= 1 && rows <= MAX_ROWS) || !here(a.dy, values) || !here(a.dev, values) ||
      !here(a.gradInput, values) || !here(a.rsqrt, channels) || !here(a.gamma, channels) ||
      !here(a.gammaGrad, channels) || !here(a.betaGrad, channels) || !cubesAreFloat32(a.rsqrt, channels)
    ) return false;
    const work = this.#batchNormWork(channels);
    if (work === undefined) return false;
    this.#kernels.bnBackward(
      a.dy.byteOffset,
      a.dev.byteOffset,
      a.rsqrt.byteOffset,
      a.gamma.byteOffset,
      a.gradInput.byteOffset,
      a.gammaGrad.byteOffset,
      a.betaGrad.byteOffset,
      rows,
      channels,
      work,
      rows,
    );
    return true;
  }

  /** Whether `view` lives in the shared memory and holds at least `length` values. */
  #holds = (view: ArrayBufferView & { length: number }, length: number): boolean =>
    this.#owned.has(view) && view.length >= length;

  /** The batch normalization kernels' per-channel work memory, past the arrays (`undefined` when it does not fit). */
  #batchNormWork(channels: number): number | undefined {
    const at = align(this.#top);
    return this.#reserve(at + WORK_SLOTS * channels * 8) ? at : undefined;
  }

  /**
   * One Adam step over `w` with gradients `g` and moments `m`, `v`, all in
   * the shared memory (else nothing is done and it returns `undefined`):
   * tfjs's own float32 operations (adam.ts), four weights at a time on every
   * thread. The last `length % 4` weights are left to the caller, to compute
   * with the same operations (the return value says how many were done: 0
   * for fewer than four). Float64 gradients are rounded to float32 as they
   * are read, as tfjs would hold them.
   */
  adam(
    w: Float32Array,
    g: Float64Array | Float32Array,
    m: Float32Array,
    v: Float32Array,
    s: AdamScalars,
  ): number | undefined {
    const here = this.#holds, length = w.length;
    if (!here(w, length) || !here(g, length) || !here(m, length) || !here(v, length)) return undefined;
    const quads = length >> 2;
    if (quads === 0) return 0;
    const ctl = this.#ctl, scalars = this.#scalars;
    ctl[WORD.kind] = g instanceof Float32Array ? ADAM32 : ADAM;
    ctl[WORD.w] = w.byteOffset;
    ctl[WORD.g] = g.byteOffset;
    ctl[WORD.mSlot] = m.byteOffset;
    ctl[WORD.vSlot] = v.byteOffset;
    ctl[WORD.quads] = quads;
    scalars[0] = s.b1;
    scalars[1] = s.ob1;
    scalars[2] = s.b2;
    scalars[3] = s.ob2;
    scalars[4] = s.c1;
    scalars[5] = s.c2;
    scalars[6] = s.eps;
    scalars[7] = s.nlr;
    this.#run(this.#share(w.length >= SHARED_MIN_WEIGHTS));
    return quads * 4;
  }

  /** Runs the job in the control block on `parts` threads (this one and `parts − 1` helpers). */
  #run(parts: number): void {
    const ctl = this.#ctl;
    ctl[WORD.parts] = parts;
    ctl[WORD.next] = 0;
    ctl[WORD.nextA] = 0;
    ctl[WORD.packedA] = 0;
    if (parts === 1) return runShare(this.#kernels, ctl, 0);
    // Open the job, run this thread's share, close it, and wait for the helpers that joined (see CLOSED). Opened by
    // clearing the flag, not by storing 0: a helper that found the last job closed may not have taken its 1 back yet
    // (storing 0 lost that 1, and the state went to -1 and never back: a hang seen once in a few hundred epochs).
    Atomics.and(ctl, WORD.state, ~CLOSED);
    const job = this.#job = (this.#job + 1) & 0x3fffffff;
    Atomics.store(ctl, WORD.job, job);
    Atomics.notify(ctl, WORD.job);
    try {
      runShare(this.#kernels, ctl, 0);
    } finally {
      Atomics.or(ctl, WORD.state, CLOSED);
      this.#awaitHelpers();
    }
  }

  /** Whether a product reads `values` where they are (float32 in the shared memory). */
  #inPlace(values: Float32Array | Float64Array): boolean {
    return values instanceof Float32Array && this.#owned.has(values);
  }

  /** Copies `values` in at `at` as float32, or returns their own address when they live here already. */
  #place(values: Float32Array | Float64Array, length: number, at: number): number {
    if (this.#inPlace(values)) return values.byteOffset;
    // float64 arrays of this memory are narrowed in the kernels (the JS copy ran ~1 ns a value on V8). (Packing
    // them where they lie instead, rounding each value as a pack read it — no narrowed copy, the packing shared by
    // every thread — ran the 784→256→256→10 MLP's epoch 15% longer on Bun and no shorter on Deno: processes
    // alternating, 4 each.)
    if (values instanceof Float64Array && this.#owned.has(values)) this.#kernels.narrow(values.byteOffset, at, length);
    else this.#f32.set(values.subarray(0, length), at / 4);
    return at;
  }

  /** Returns once no helper is in the job (the state word is {@link CLOSED} alone). */
  #awaitHelpers(): void {
    const ctl = this.#ctl;
    let spins = 0;
    for (let state = Atomics.load(ctl, WORD.state); state !== CLOSED; state = Atomics.load(ctl, WORD.state)) {
      if (this.#canWait && ++spins > 1000) Atomics.wait(ctl, WORD.state, state, 1);
    }
  }

  #reserve(bytes: number): boolean {
    const have = this.#memory.buffer.byteLength;
    if (bytes <= have) return true;
    const pages = Math.ceil((bytes - have) / PAGE);
    if (have / PAGE + pages > this.#maxPages) return false;
    this.#memory.grow(pages);
    this.#f32 = new Float32Array(this.#memory.buffer);
    return true;
  }
}

/** Whether this thread may block in `Atomics.wait` (a browser's main thread may not). */
function canWaitHere(ctl: Int32Array): boolean {
  try {
    Atomics.wait(ctl, CONTROL_BYTES / 4 - 1, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts one helper thread, or `undefined` when this runtime cannot. */
async function startHelper(start: HelperStart): Promise<Helper | undefined> {
  const url = new URL("./helper_worker.ts", import.meta.url);
  try {
    if (isServerRuntime) {
      const { Worker } = await import("node:worker_threads");
      const worker = new Worker(url);
      worker.unref(); // see isServerRuntime
      worker.on("error", () => {});
      worker.postMessage(start);
      return worker;
    }
    if (typeof Worker === "undefined") return undefined;
    const worker = new Worker(url, { type: "module" });
    worker.postMessage(start);
    return worker;
  } catch {
    return undefined;
  }
}

let shared: SimdKernels | undefined | null;

/** The machine's cores, as the runtime reports them. */
export function coreCount(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}

/** What the kernels may take: helper threads (by default one per other core) and pages of memory. */
const limits = { helpers: Math.max(0, Math.min(MAX_HELPERS, coreCount() - 1)), maxPages: MAX_PAGES };

/** The most memory the kernels can be given, in MiB. */
export const MAX_MEMORY_MIB: number = (MAX_PAGES * PAGE) / 2 ** 20;

/**
 * Bounds the kernels: `threads` in all (this one and `threads − 1` helpers,
 * at most {@link MAX_HELPERS}) and `memoryMiB` of memory; what is left out
 * keeps its value. Applies to the kernels made already too.
 */
export function setKernelLimits({ threads, memoryMiB }: { threads?: number; memoryMiB?: number }): void {
  if (threads !== undefined) limits.helpers = Math.min(MAX_HELPERS, threads - 1);
  if (memoryMiB !== undefined) limits.maxPages = Math.floor((memoryMiB * 2 ** 20) / PAGE);
  if (shared) shared.limit(limits.helpers, limits.maxPages);
}

/** The process's SIMD kernels (made on first use; `undefined` where WebAssembly SIMD or shared memory is missing). */
export function simdKernels(): SimdKernels | undefined {
  if (shared === undefined) {
    try {
      shared = new SimdKernels(limits.helpers);
      shared.limit(limits.helpers, limits.maxPages);
    } catch {
      shared = null;
    }
  }
  return shared ?? undefined;
}
