/**
 * Soak: kill the housing example with SIGKILL at random moments, resume it,
 * and check what survived. Each round starts `examples/housing.ts` with
 * `--checkpoint` (and `--resume` after the first), waits for the log to grow,
 * waits a random 0–300 ms more (mid-epoch, mid-line or mid-save), kills it,
 * then checks:
 *
 * - lines lost: a gap in the steps of the log's complete lines, or a
 *   complete line that does not parse;
 * - lines doubled: a line that repeats a step already logged;
 * - peak memory: the largest resident memory a run reached (Linux's VmHWM,
 *   read just before the kill);
 * - corrupt checkpoints: the newest checkpoint does not load (its checks
 *   include the checksums);
 * - wrong resumes: the next round does not say "resuming after epoch k" for
 *   the newest checkpoint's step k, or its first new line is not k + 1.
 *
 *   deno run -A bench/soak.ts [--kills 20] [--seconds 300] [--seed 1] [--quick]
 *   bun bench/soak.ts …
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { loadCheckpoint, useBackend } from "../mod.ts";
import { jsonLine, runtime } from "./common.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    kills: { type: "string", default: "20" },
    seconds: { type: "string", default: "300" },
    seed: { type: "string", default: "1" },
    quick: { type: "boolean", default: false },
  },
  strict: true,
});
const kills = values.quick ? 3 : Number(values.kills);
const budgetMs = Number(values.seconds) * 1000;
let seed = Number(values.seed) >>> 0;
const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);

await useBackend(); // the checks load checkpoints with tfjs
const root = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "fitstream-soak-"));
const log = join(dir, "run.jsonl"), ckpt = join(dir, "ckpt");

/** The complete lines of the log: their steps, and how many did not parse. */
function readLog(): { steps: number[]; unparsable: number } {
  if (!existsSync(log)) return { steps: [], unparsable: 0 };
  const text = readFileSync(log, "utf8");
  const steps: number[] = [];
  let unparsable = 0;
  for (const line of text.slice(0, text.lastIndexOf("\n") + 1).split("\n")) {
    if (line === "") continue;
    try {
      steps.push(JSON.parse(line).step);
    } catch {
      unparsable++;
    }
  }
  return { steps, unparsable };
}

/** Steps of 1..last that are missing, and lines that repeat a step already logged. */
function gaps(steps: number[]): { missing: number; doubled: number } {
  const seen = new Set<number>();
  let doubled = 0;
  for (const step of steps) {
    if (seen.has(step)) doubled++;
    else seen.add(step);
  }
  const last = steps.length ? Math.max(...steps) : 0;
  return { missing: last - seen.size, doubled };
}

/** A process's peak resident memory so far in MB (Linux's VmHWM), or undefined where /proc cannot tell. */
function peakMb(pid: number | undefined): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmHWM:\s+(\d+) kB/.exec(status);
    return kb ? Number(kb[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function start(resume: boolean) {
  const script = ["examples/housing.ts", "--out", log, "--checkpoint", ckpt, "--epochs", "100000"];
  if (resume) script.push("--resume");
  const args = runtime === "deno" ? ["run", "-A", ...script] : script;
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
  let stdout = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, exited, output: () => stdout };
}

const began = Date.now();
let linesLost = 0, linesDoubled = 0, corrupt = 0, wrongResumes = 0, rounds = 0, finishedAlone = 0;
let peak: number | undefined;
let expectedResume: number | undefined;
try {
  for (let round = 0; round < kills && Date.now() - began < budgetMs; round++) {
    const before = readLog().steps.length;
    const run = start(round > 0);
    let exitedAlone = false;
    void run.exited.then(() => (exitedAlone = true));
    // Wait (bounded) until this run has written a line of its own — after its resume message, as the
    // resume trims the log back to the checkpoint — then for a random moment.
    const until = Date.now() + 60_000;
    const started = () =>
      expectedResume === undefined
        ? readLog().steps.length > before
        : /resuming after epoch/.test(run.output()) && readLog().steps.length > expectedResume;
    while (!exitedAlone && !started() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, random() * 300));
    const mb = peakMb(run.child.pid);
    if (mb !== undefined) peak = Math.max(peak ?? 0, mb);
    if (exitedAlone) finishedAlone++;
    else run.child.kill("SIGKILL");
    await run.exited;
    rounds++;
    const out = run.output();
    if (expectedResume !== undefined) {
      const said = /resuming after epoch (\d+)/.exec(out);
      if (!said || Number(said[1]) !== expectedResume) {
        wrongResumes++;
        console.log(`round ${round}: expected to resume after ${expectedResume}, output: ${out.slice(0, 300)}`);
      }
    }
    const { steps, unparsable } = readLog();
    const { missing, doubled } = gaps(steps);
    const lost = unparsable + missing;
    linesLost += lost;
    linesDoubled += doubled;
    let saved: number | undefined;
    try {
      const checkpoint = await loadCheckpoint(ckpt);
      tf.dispose([...checkpoint.modelWeights, ...checkpoint.optimizerWeights].map((w) => w.tensor));
      saved = checkpoint.step;
    } catch (error) {
      if (existsSync(ckpt)) {
        corrupt++;
        console.log(`round ${round}: newest checkpoint does not load: ${(error as Error).message}`);
      }
    }
    // The log may run one line ahead of the checkpoint (the line is written first); never behind.
    if (saved !== undefined && steps.length < saved) {
      linesLost += saved - steps.length;
      console.log(`round ${round}: checkpoint at ${saved} but the log has ${steps.length} lines`);
    }
    expectedResume = saved;
    console.log(
      `round ${round + 1}: log ${steps.length} lines, checkpoint ${saved ?? "none"}, ` +
        `${lost ? `${lost} lines lost` : "nothing lost"}${doubled ? `, ${doubled} lines doubled` : ""}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const seconds = (Date.now() - began) / 1000;
console.log(
  `${rounds} rounds (${rounds - finishedAlone} killed) in ${seconds.toFixed(0)} s: ` +
    `lines lost ${linesLost}, lines doubled ${linesDoubled}, corrupt checkpoints ${corrupt}, wrong resumes ${wrongResumes}, ` +
    `peak memory of a run ${peak === undefined ? "n/a" : `${peak.toFixed(0)} MB`}`,
);
jsonLine("soak", {
  rounds,
  kills: rounds - finishedAlone,
  lines_lost: linesLost,
  lines_doubled: linesDoubled,
  peak_mb: peak ?? null,
  corrupt_checkpoints: corrupt,
  wrong_resumes: wrongResumes,
  seconds,
});
