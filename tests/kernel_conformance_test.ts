// Kernel conformance: every kernel that training a tfjs-layers model reaches on the wasm backend, forward and
// backward, called directly with tf.engine().runKernel on the wasm and on the cpu backend (both as useBackend sets
// them up, fitstream's own kernels included) with the same seeded inputs, computes what the cpu backend computes.
// The cases live in ./kernel_cases.ts, one table entry per kernel.
//
// The cpu backend is the arbiter, except where a case has a float64 reference (the pooling and resizing gradients,
// UnsortedSegmentSum, the depthwise and 3-d convolution backprops, Erf) and the cpu backend disagrees with it: there
// the reference is the arbiter, and a failure says so.
//
// Set KERNEL_CONFORMANCE_REPORT=1 to print each kernel's largest gap, in ulps and against its tolerance.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../mod.ts";
import { backend } from "./tf_helpers.ts";
import { runScript } from "./spawn.ts";
import {
  type Case,
  decodeRuns,
  type Input,
  type KernelSpec,
  magnitudeCases,
  type Output,
  runAll,
  type Runs,
  RUNS_MARKER,
  runSpec,
  SPECIAL_SPECS,
  SPECIAL_VALUES,
  SPECS,
  type Tolerance,
} from "./kernel_cases.ts";

const REPORT = process.env.KERNEL_CONFORMANCE_REPORT === "1";

/** Whether the wasm backend loads here (the default backend may be cpu by choice). */
const wasmLoads = backend === "wasm" || await (async () => {
  try {
    await useBackend("wasm");
    return true;
  } catch {
    return false;
  } finally {
    await tf.setBackend(backend);
  }
})();

/** One float32 ulp at |v| (the spacing of float32 numbers there). */
function ulp(v: number): number {
  const a = Math.abs(v);
  if (!(a >= 2 ** -126)) return 2 ** -149;
  if (a === Infinity) return Infinity;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

interface Gap {
  index: number;
  got: number;
  want: number;
  gap: number;
  bound: number;
}

/** How far `a` may be from `b` under `tolerance`; `magnitude` bounds Σ|terms| for `sum`. */
function allowed(b: number, tolerance: Tolerance, magnitude?: number): number {
  if (tolerance.kind === "exact") return 0;
  const bound = tolerance.kind === "ulps"
    ? tolerance.ulps * ulp(b) + (tolerance.atol ?? 0)
    : tolerance.rel * (magnitude ?? Math.abs(b)) + tolerance.ulps * ulp(b);
  return Math.max(bound, 2 ** -126); // a subnormal result may flush to zero
}

function gapOf(a: number, b: number, tolerance: Tolerance, magnitude?: number): Gap | undefined {
  if (a === b || (Number.isNaN(a) && Number.isNaN(b))) return undefined;
  // NaN against a number, or an infinity against anything else, is never within tolerance.
  const finite = Number.isFinite(a) && Number.isFinite(b);
  return {
    index: 0,
    got: a,
    want: b,
    gap: finite ? Math.abs(a - b) : Infinity,
    bound: allowed(b, tolerance, magnitude),
  };
}

const within = (g: Gap | undefined) => g === undefined || g.gap <= g.bound;
const ratio = (g: Gap) => (g.gap === 0 ? 0 : g.bound === 0 ? Infinity : g.gap / g.bound);

/** Every element of `got` against `want`: how many are out of tolerance, and the worst (largest gap / allowed). */
function compare(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tolerance: Tolerance,
  magnitude?: ArrayLike<number>,
): { bad: number; worst?: Gap; examples: Gap[] } {
  let bad = 0;
  let worst: Gap | undefined;
  const examples: Gap[] = [];
  for (let i = 0; i < want.length; i++) {
    const g = gapOf(got[i], want[i], tolerance, magnitude?.[i]);
    if (g === undefined) continue;
    g.index = i;
    if (!within(g) && bad++ < 8) examples.push(g);
    if (worst === undefined || ratio(g) > ratio(worst)) worst = g;
  }
  return { bad, worst, examples };
}

function describeGap(g: Gap, shape: number[]): string {
  const at: number[] = [];
  let rest = g.index;
  for (let d = shape.length - 1; d >= 0; d--) {
    at.unshift(rest % shape[d]);
    rest = Math.floor(rest / shape[d]);
  }
  return `at [${at}]: ${g.got} vs ${g.want} (gap ${g.gap.toPrecision(3)}, ${
    (g.gap / ulp(g.want)).toPrecision(3)
  } ulps, allowed ${g.bound.toPrecision(3)})`;
}

const inputSize = (c: Case) =>
  (Array.isArray(c.inputs) ? c.inputs : Object.values(c.inputs)).reduce(
    (n: number, t: Input) => n + t.values.length,
    0,
  );

interface Finding {
  label: string;
  size: number;
  message: string;
  /** The first values out of tolerance. */
  examples?: Gap[];
}

interface Stats {
  cases: number;
  maxUlps: number;
  maxRatio: number;
  cpuOffReference: string[];
}

/**
 * The spec's runs: in this process, or — for the kernels that corrupt the wasm heap — one child process per case, a
 * case that kills its child counting as a wasm error.
 */
async function runsOf(spec: KernelSpec, cases: Case[]): Promise<Runs> {
  if (!spec.isolate) return await runSpec(spec, cases);
  const runs: Runs = { cpu: [], wasm: [], magnitude: [] };
  for (let i = 0; i < cases.length; i++) {
    const child = await runScript("tests/kernel_cases.ts", [spec.test, String(i)]);
    const line = child.stdout.split("\n").find((l) => l.startsWith(RUNS_MARKER));
    if (line === undefined) {
      const why = child.stderr.split("\n").find((l) => /error/i.test(l))?.trim() ?? `exit status ${child.code}`;
      // The cpu side of a crashed child is rerun here: the cpu backend is safe.
      const [cpu] = await runAll("cpu", spec.kernel, [cases[i]]);
      const [magnitude] = spec.tolerance.kind === "sum" && !spec.reference
        ? await runAll("cpu", spec.kernel, magnitudeCases(spec, [cases[i]]))
        : [];
      runs.cpu.push(cpu);
      runs.wasm.push({ error: `crashed its process (${spec.isolate}): ${why}` });
      if (magnitude) runs.magnitude.push(magnitude);
      continue;
    }
    const one = decodeRuns(line.slice(RUNS_MARKER.length));
    runs.cpu.push(...one.cpu);
    runs.wasm.push(...one.wasm);
    runs.magnitude.push(...one.magnitude);
  }
  return runs;
}

/** Compares wasm with the arbiter for every case of `spec`; returns the disagreements. */
async function conform(spec: KernelSpec, stats: Stats): Promise<Finding[]> {
  const cases = spec.cases();
  stats.cases = cases.length;
  const runs = await runsOf(spec, cases);
  const magnitudes = magnitudeCases(spec, cases);
  const findings: Finding[] = [];
  cases.forEach((c, i) => {
    const add = (message: string) => findings.push({ label: c.label, size: inputSize(c), message });
    const want = runs.cpu[i], got = runs.wasm[i];
    if ("error" in want) {
      throw new Error(`${spec.kernel} ${c.label}: the cpu backend threw (a bad case): ${want.error}`);
    }
    if ("error" in got) return add(`threw on wasm: ${got.error}`);
    if (got.outputs.length !== want.outputs.length) {
      return add(`${got.outputs.length} outputs on wasm, ${want.outputs.length} on cpu`);
    }
    // The arbiter: the cpu backend, unless it is off the float64 reference (first output only).
    let arbiter: Output[] = want.outputs;
    let magnitude: ArrayLike<number>[] | undefined;
    let against = "the cpu backend";
    if (spec.reference) {
      const reference = spec.reference(c);
      const refMagnitude = spec.reference(magnitudes[i] ?? c).values.map(Math.abs);
      magnitude = [refMagnitude];
      // The cpu backend is held to the tolerance wasm is held to.
      const cpu = want.outputs[0];
      const sameShape = JSON.stringify(cpu.shape) === JSON.stringify(reference.shape);
      const cpuGap = compare(cpu.values, reference.values, spec.tolerance, refMagnitude);
      if (!sameShape || cpuGap.bad > 0) {
        stats.cpuOffReference.push(
          `${c.label}: ${
            sameShape
              ? `${cpuGap.bad} values off, worst ${describeGap(cpuGap.worst!, cpu.shape)}`
              : `shape [${cpu.shape}], the reference's [${reference.shape}]`
          }`,
        );
        arbiter = [{ shape: reference.shape, dtype: cpu.dtype, values: Float32Array.from(reference.values) }];
        against = "the float64 reference (the cpu backend is off it here too)";
      }
    } else if (spec.tolerance.kind === "sum") {
      const m = runs.magnitude[i];
      if ("error" in m) throw new Error(`${spec.kernel} ${c.label}: magnitude run threw on cpu: ${m.error}`);
      magnitude = m.outputs.map((o) => o.values);
    }
    got.outputs.forEach((o, k) => {
      const w = arbiter[k];
      if (o.dtype !== w.dtype) return add(`output ${k} is ${o.dtype} on wasm, ${w.dtype} on ${against}`);
      if (JSON.stringify(o.shape) !== JSON.stringify(w.shape)) {
        return add(`output ${k} has shape [${o.shape}] on wasm, [${w.shape}] on ${against}`);
      }
      const { bad, worst, examples } = compare(o.values, w.values, spec.tolerance, magnitude?.[k]);
      if (worst) {
        stats.maxUlps = Math.max(stats.maxUlps, worst.gap / ulp(worst.want));
        stats.maxRatio = Math.max(stats.maxRatio, ratio(worst));
      }
      if (bad > 0) {
        add(
          `output ${k} differs from ${against} in ${bad} of ${o.values.length} values; worst ${
            describeGap(worst!, o.shape)
          }`,
        );
        findings[findings.length - 1].examples = examples;
      }
    });
  });
  return findings;
}

function report(spec: KernelSpec, stats: Stats, findings: Finding[]): void {
  if (!REPORT) return;
  const status = findings.length === 0 ? "PASS" : `FAIL ${new Set(findings.map((f) => f.label)).size}/${stats.cases}`;
  console.log(
    `[conformance] ${spec.kernel} | ${spec.test} | ${status} | max ${stats.maxUlps.toPrecision(3)} ulps, ${
      stats.maxRatio.toPrecision(3)
    } × allowed`,
  );
  for (const line of stats.cpuOffReference) console.log(`[conformance]   cpu off the float64 reference: ${line}`);
}

function failureMessage(spec: KernelSpec, stats: Stats, findings: Finding[]): string {
  const byCase = new Map<string, Finding[]>();
  for (const f of findings) byCase.set(f.label, [...(byCase.get(f.label) ?? []), f]);
  const minimal = findings.reduce((a, b) => (b.size < a.size ? b : a));
  const lines = [
    `${spec.kernel} on wasm disagrees in ${byCase.size} of ${stats.cases} cases.`,
    `Smallest failing case: ${spec.kernel} ${minimal.label}: ${minimal.message}`,
    "All failing cases:",
    ...[...byCase].map(([label, fs]) => `  ${label}: ${fs.map((f) => f.message).join("; ")}`),
  ];
  if (stats.cpuOffReference.length > 0) {
    lines.push("Where the cpu backend is off the float64 reference:", ...stats.cpuOffReference.map((l) => `  ${l}`));
  }
  return lines.join("\n");
}

/** Training reaches every kernel in the table: one that wasm lacks is a failure, not a skip. */
function assertRegistered(kernel: string): void {
  assert.ok(
    tf.getKernel(kernel, "wasm") !== undefined,
    `${kernel} is not registered for the wasm backend: training reaches it, so a model that needs it cannot ` +
      `train on wasm (tf.engine().runKernel("${kernel}") throws there)`,
  );
}

const newStats = (): Stats => ({ cases: 0, maxUlps: 0, maxRatio: 0, cpuOffReference: [] });

for (const spec of SPECS) {
  test(spec.test, async () => {
    if (!wasmLoads) return; // only where the wasm backend loads
    assertRegistered(spec.kernel);
    const before = tf.memory().numTensors;
    const stats = newStats();
    const findings = await conform(spec, stats);
    report(spec, stats, findings);
    assert.equal(tf.memory().numTensors, before, `${spec.kernel}: tensors leaked`);
    if (findings.length > 0) assert.fail(failureMessage(spec, stats, findings));
  });
}

test("elementwise kernels on wasm treat NaN, ±Infinity, ±0, tiny, huge and subnormal values as the cpu backend does", async () => {
  if (!wasmLoads) return;
  const before = tf.memory().numTensors;
  const failures: string[] = [];
  for (const spec of SPECIAL_SPECS) {
    assertRegistered(spec.kernel);
    const stats = newStats();
    const findings = await conform(spec, stats);
    report(spec, stats, findings);
    if (findings.length === 0) continue;
    // Name the inputs of the values that differ: x, or (a, b) for every pair.
    const [c] = spec.cases();
    const inputs = c.inputs as Record<string, Input>;
    const n = SPECIAL_VALUES.length;
    const args = (
      i: number,
    ) => ("x" in inputs ? `${SPECIAL_VALUES[i]}` : `${SPECIAL_VALUES[Math.floor(i / n)]}, ${SPECIAL_VALUES[i % n]}`);
    const f = findings[0];
    const detail = f.examples?.map((g) => `(${args(g.index)}) = ${g.got} on wasm, ${g.want} expected`).join("; ") ??
      f.message;
    const attrs = Object.keys(c.attrs).length ? " " + JSON.stringify(c.attrs) : "";
    failures.push(`${spec.kernel}${attrs}: ${detail}`);
  }
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  assert.deepEqual(failures, [], failures.join("\n"));
});

test("the wasm heap is intact after every kernel above: wasm still allocates, computes and frees as the cpu backend does", async () => {
  if (!wasmLoads) return;
  // A kernel that writes out of bounds corrupts the heap silently; the next allocations or frees then fail.
  const before = tf.memory().numTensors;
  const compute = async (name: "cpu" | "wasm") => {
    const prior = tf.getBackend();
    await useBackend(name);
    try {
      return tf.tidy(() => {
        const sizes = Array.from({ length: 40 }, (_, i) => tf.fill([1 + 97 * i], i));
        const x = tf.tensor4d(Float32Array.from({ length: 2 * 9 * 9 * 3 }, (_, i) => Math.sin(i)), [2, 9, 9, 3]);
        const f = tf.tensor4d(Float32Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i)), [3, 3, 3, 4]);
        const y = tf.conv2d(x, f, 1, "same").reshape([2, -1]);
        const total = sizes.reduce((s, t) => s.add(t.sum()), tf.scalar(0));
        return [...y.matMul(y, false, true).dataSync(), total.dataSync()[0]];
      });
    } finally {
      await tf.setBackend(prior);
    }
  };
  const [cpu, wasm] = [await compute("cpu"), await compute("wasm")];
  const worst = cpu.reduce((m, v, i) => Math.max(m, Math.abs(v - wasm[i]) / Math.max(1, Math.abs(v))), 0);
  assert.ok(worst <= 1e-5, `wasm is off the cpu backend by ${worst} (relative) after the conformance cases`);
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
});

test("every kernel fitstream registers has a conformance spec", async () => {
  const { SUPPLIED_KERNELS } = await import("../src/kernels/register.ts");
  const covered = new Set([...SPECS, ...SPECIAL_SPECS].map((spec) => spec.kernel));
  const missing = SUPPLIED_KERNELS.map((k) => k.name).filter((name) => !covered.has(name));
  assert.deepEqual(missing, [], "add a spec to tests/kernel_cases.ts for each");
});
