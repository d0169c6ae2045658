/**
 * Large NHWC 2-d convolutions on the SIMD kernels' `convolve`
 * (simd/convolve.ts), shared across cores by samples: the forward pass, and
 * the input gradient as the convolution of the output gradient (spread by the
 * stride and padded by the filter's size less one, less the padding) with the
 * filter turned half a turn and its channels swapped. Each output sums its
 * terms in float32 in tap order (filter row, column, channel) from zero — not
 * the cpu backend's float64 order; the input gradient also adds the zeros
 * around the output gradient, which change nothing but the sign of a zero.
 * A 'valid' convolution at stride 1 (the usual conv layer) takes its input
 * gradient on simd/scatter.ts instead: the MNIST CNN's second layer's 8.4 →
 * 5.7 ms of CPU a step on Deno, 9.7 → 5.6 on Bun (one thread,
 * bench/profile_cnn.ts `CNN_SWITCH=scatterInputGradients`).
 * The gap to the cpu backend is float32 accumulation noise, bounded in
 * tests/kernel_conformance_test.ts.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { simdKernels } from "./simd/products.ts";
import { POSITION_BLOCK } from "./simd/convolve.ts";
import { SCATTER_BLOCK } from "./simd/scatter.ts";
import { padInput } from "./conv2d_padding.ts";

/** Whether the forward pass and the input gradient run here; off only to measure against before (bench/profile_cnn.ts). */
export const directConvolutions = { on: true };

/**
 * Whether 'valid' input gradients at stride 1 run on simd/scatter.ts (only the products that exist) instead of as
 * a convolution of the padded output gradient; off only to measure against that (bench/profile_cnn.ts).
 */
export const scatterInputGradients = { on: true };

type Info = tf.backend_util.Conv2DInfo;

/** A convolution on the kernels: its padded input, its output positions and taps (float offsets), its packed weights. */
interface Plan {
  samples: number;
  xSample: number;
  fill(x: Float32Array): void;
  /** Output positions per sample. */
  count: number;
  positions: Int32Array;
  offsets: Int32Array;
  /** Per block of positions, the first and past the last tap it sums (all, unless given). */
  ranges?: Int32Array;
  /** `weight(t, o)`: the weight of tap `t` for output channel `o`. */
  weight(t: number, o: number): number;
  outChannels: number;
}

/** Runs `plan`, writing its outputs (`[sample][position][outChannels]`) into `out`; false when the memory is full. */
function run(plan: Plan, out: Float32Array): boolean {
  const { samples, count, outChannels, offsets } = plan;
  const stride = Math.ceil(outChannels / 8) * 8, taps = offsets.length;
  const weights = new Float32Array((stride / 8) * taps * 8);
  for (let g = 0, at = 0; g < stride; g += 8) {
    for (let t = 0; t < taps; t++) {
      for (let j = g; j < g + 8; j++, at++) if (j < outChannels) weights[at] = plan.weight(t, j);
    }
  }
  const result = simdKernels()!.convolve({
    samples,
    xSample: plan.xSample,
    positions: plan.positions,
    offsets,
    ranges: plan.ranges ?? new Int32Array(plan.positions.length / POSITION_BLOCK * 2).map((_, i) => i % 2 ? taps : 0),
    weights,
    stride,
    fill: plan.fill,
  });
  if (result === undefined) return false;
  const padded = plan.positions.length;
  if (stride === outChannels && padded === count) {
    out.set(result.subarray(0, samples * count * stride)); // the samples' rows run on: one copy
    return true;
  }
  if (stride === outChannels) {
    for (let b = 0; b < samples; b++) {
      out.set(result.subarray(b * padded * stride, (b * padded + count) * stride), b * count * outChannels);
    }
    return true;
  }
  for (let b = 0; b < samples; b++) {
    for (let p = 0; p < count; p++) {
      const from = (b * padded + p) * stride;
      out.set(result.subarray(from, from + outChannels), (b * count + p) * outChannels);
    }
  }
  return true;
}

/** Position offsets of an output `outHeight` × `outWidth`, padded to whole blocks by repeating the last. */
function positionsOf(outHeight: number, outWidth: number, rowStep: number, colStep: number): Int32Array {
  const count = outHeight * outWidth;
  const positions = new Int32Array(Math.ceil(count / POSITION_BLOCK) * POSITION_BLOCK);
  for (let r = 0, p = 0; r < outHeight; r++) {
    for (let c = 0; c < outWidth; c++) positions[p++] = r * rowStep + c * colStep;
  }
  positions.fill(positions[count - 1], count);
  return positions;
}

/** The forward convolution (NHWC) into `out`, or false when the kernels' memory is full. */
export function convolveForward(info: Info, xs: Float32Array, filter: ArrayLike<number>, out: Float32Array): boolean {
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, outChannels } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, filterHeight, filterWidth } = info;
  const rows = (outHeight - 1) * sh + (filterHeight - 1) * dh + 1,
    cols = (outWidth - 1) * sw + (filterWidth - 1) * dw + 1;
  const offsets = new Int32Array(filterHeight * filterWidth * ch);
  for (let fr = 0, t = 0; fr < filterHeight; fr++) {
    for (let fc = 0; fc < filterWidth; fc++) {
      for (let i = 0; i < ch; i++) offsets[t++] = (fr * dh * cols + fc * dw) * ch + i;
    }
  }
  const geometry = { samples: batchSize, inHeight, inWidth, channels: ch, rows, cols, ...padOf(info) };
  return run({
    samples: batchSize,
    xSample: rows * cols * ch,
    fill: (x) => padInput(geometry, xs, x),
    count: outHeight * outWidth,
    positions: positionsOf(outHeight, outWidth, sh * cols * ch, sw * ch),
    offsets,
    weight: (t, o) => filter[t * outChannels + o],
    outChannels,
  }, out);
}

function padOf(info: Info): { top: number; left: number } {
  return { top: info.padInfo.top, left: info.padInfo.left };
}

/**
 * The input gradient (NHWC) into `out`, or false when the kernels' memory is
 * full or the padding is wider than the filter less one (left to the
 * products).
 */
export function convolveInputGradient(
  info: Info,
  grads: Float32Array,
  filter: ArrayLike<number>,
  out: Float32Array,
): boolean {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels: ch } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  if (
    scatterInputGradients.on && sh === 1 && sw === 1 && info.padInfo.top === 0 && info.padInfo.left === 0 &&
    outHeight === inHeight - fh + 1 && outWidth === inWidth - fw + 1
  ) {
    return scatterInputGradient(info, grads, filter, out);
  }
  // dx[xr] = Σ over fr of dy[(xr + top − fr) / sh] · w[fr] where that row exists: with the output gradient spread by
  // the stride and put `fh − 1 − top` rows down, a valid correlation with the filter turned around.
  const top = fh - 1 - info.padInfo.top, left = fw - 1 - info.padInfo.left;
  if (top < 0 || left < 0) return false;
  const rows = inHeight + fh - 1, cols = inWidth + fw - 1;
  const offsets = new Int32Array(fh * fw * ch);
  for (let fr = 0, t = 0; fr < fh; fr++) {
    for (let fc = 0; fc < fw; fc++) {
      for (let o = 0; o < ch; o++) offsets[t++] = (fr * cols + fc) * ch + o;
    }
  }
  // Output gradient columns that land inside the padded rows.
  const reach = Math.min(outWidth, Math.ceil((cols - left) / sw));
  const fill = (x: Float32Array) => {
    x.fill(0);
    for (let b = 0; b < batchSize; b++) {
      for (let r = 0; r < outHeight; r++) {
        const xr = r * sh + top;
        if (xr >= rows) break;
        const from = ((b * outHeight + r) * outWidth) * ch, at = ((b * rows + xr) * cols + left) * ch;
        // At stride 1 a row moves in one copy (a copy a pixel took ~1 ms of CPU a step of the MNIST CNN on Deno,
        // 2–6 on Bun; a row 0.2–0.4).
        if (sw === 1) x.set(grads.subarray(from, from + reach * ch), at);
        else {for (let c = 0; c < reach; c++) {
            x.set(grads.subarray(from + c * ch, from + (c + 1) * ch), at + c * sw * ch);
          }}
      }
    }
  };
  // Each block of positions sums only the filter rows that reach a row of the output gradient from one of its rows
  // (the rest read zeros): of the MNIST CNN's second layer's 60 (position row, filter row) pairs, 40. Taps run filter
  // row by filter row, so those are one range.
  const positions = positionsOf(inHeight, inWidth, cols * ch, ch), count = inHeight * inWidth;
  const ranges = new Int32Array((positions.length / POSITION_BLOCK) * 2);
  const dyRows = Math.min(outHeight, Math.ceil((rows - top) / sh)); // spread rows top, top + sh, … below `rows`
  const rowReach = (xr: number): [number, number] => {
    // Filter rows fr with xr + fr a row of the output gradient: top + j·sh for some j < dyRows.
    let lo = fh, hi = 0;
    for (let fr = 0; fr < fh; fr++) {
      const j = xr + fr - top;
      if (j >= 0 && j % sh === 0 && j / sh < dyRows) lo = Math.min(lo, fr), hi = fr + 1;
    }
    return [lo, hi];
  };
  for (let block = 0; block < ranges.length / 2; block++) {
    const first = Math.floor(Math.min(block * POSITION_BLOCK, count - 1) / inWidth);
    const last = Math.floor(Math.min(block * POSITION_BLOCK + POSITION_BLOCK - 1, count - 1) / inWidth);
    let lo = fh, hi = 0;
    for (let xr = first; xr <= last; xr++) {
      const [l, h] = rowReach(xr);
      lo = Math.min(lo, l), hi = Math.max(hi, h);
    }
    if (hi <= lo) lo = hi = 0; // nothing reaches: the sums stay zero
    ranges[2 * block] = lo * fw * ch;
    ranges[2 * block + 1] = hi * fw * ch;
  }
  return run({
    samples: batchSize,
    xSample: rows * cols * ch,
    fill,
    count,
    positions,
    offsets,
    ranges,
    // Tap (fr, fc, o) of the turned filter for input channel i: w[fh − 1 − fr, fw − 1 − fc, i, o].
    weight: (t, i) => {
      const o = t % ch, tap = (t - o) / ch, fc = tap % fw, fr = (tap - fc) / fw;
      return filter[(((fh - 1 - fr) * fw + (fw - 1 - fc)) * inChannels + i) * ch + o];
    },
    outChannels: inChannels,
  }, out);
}

/**
 * The input gradient of a 'valid' convolution at stride 1 (NHWC) into `out` on simd/scatter.ts, or false when the
 * kernels' memory is full. Each input value sums its terms in float32 in tap order (filter row, column, output
 * channel) from zero: the order of the convolution above with the filter's rows and columns the other way round.
 */
function scatterInputGradient(info: Info, grads: Float32Array, filter: ArrayLike<number>, out: Float32Array): boolean {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels: depth } = info;
  const { filterHeight: fh, filterWidth: fw } = info;
  const stride = Math.ceil(inChannels / 8) * 8, groups = stride / 8, taps = fh * fw;
  const count = outHeight * outWidth, padded = Math.ceil(count / SCATTER_BLOCK) * SCATTER_BLOCK;
  const input = inHeight * inWidth * stride;
  const dyPos = new Int32Array(padded), dxPos = new Int32Array(padded);
  for (let r = 0, p = 0; r < outHeight; r++) {
    for (let c = 0; c < outWidth; c++, p++) dyPos[p] = p * depth * 4, dxPos[p] = (r * inWidth + c) * stride * 4;
  }
  // Positions that pad the last block read the first position's gradient and write past the sample's input, into
  // room no one reads (as far as the filter reaches from there).
  dxPos.fill(input * 4, count);
  const room = padded > count ? ((fh - 1) * inWidth + fw) * stride : 0;
  const tapOffs = new Int32Array(taps);
  for (let fr = 0; fr < fh; fr++) {
    for (let fc = 0; fc < fw; fc++) tapOffs[fr * fw + fc] = (fr * inWidth + fc) * stride * 4;
  }
  // Packed [group][tap][depth][8]: the filter [fh, fw, in, out] read with its input channels inner.
  const weights = new Float32Array(groups * taps * depth * 8);
  for (let g = 0, at = 0; g < groups; g++) {
    for (let t = 0; t < taps; t++) {
      for (let o = 0; o < depth; o++) {
        for (let j = 0; j < 8; j++, at++) {
          const i = g * 8 + j;
          if (i < inChannels) weights[at] = filter[(t * inChannels + i) * depth + o];
        }
      }
    }
  }
  const dySample = count * depth, dxSample = input + room;
  const result = simdKernels()!.scatter({
    samples: batchSize,
    dySample,
    dxSample,
    dyPos,
    dxPos,
    tapOffs,
    depth,
    groups,
    weights,
    fill: (dy) => dy.set(grads.subarray(0, batchSize * dySample)),
  });
  if (result === undefined) return false;
  const pixels = inHeight * inWidth;
  if (stride === inChannels && room === 0) {
    out.set(result.subarray(0, batchSize * input));
    return true;
  }
  for (let b = 0; b < batchSize; b++) {
    if (stride === inChannels) {
      out.set(result.subarray(b * dxSample, b * dxSample + input), b * pixels * inChannels);
      continue;
    }
    for (let p = 0; p < pixels; p++) {
      const from = b * dxSample + p * stride;
      out.set(result.subarray(from, from + inChannels), (b * pixels + p) * inChannels);
    }
  }
  return true;
}
