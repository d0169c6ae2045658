// The package's three entry points: mod.ts re-exports the stream core from core.ts (one list, not two),
// and cli.ts runs only as a program, so importing the ./cli export runs nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as core from "../core.ts";
import * as mod from "../mod.ts";
import { runScript } from "./spawn.ts";

// mod.ts's values when it still listed the core's exports itself: moving them to `export *` changed none.
const MOD_VALUES = [
  "EventStream",
  "Stage",
  "augment",
  "categoricalCrossentropy",
  "checkpoint",
  "checkpointModel",
  "collect",
  "collectJsonl",
  "csvDataset",
  "dashboard",
  "earlyStop",
  "ema",
  "emaWeights",
  "epochStream",
  "explainEngine",
  "exponentialDecay",
  "fromJsonl",
  "getLearningRate",
  "httpSink",
  "iterBatches",
  "jsonlSink",
  "loadCheckpoint",
  "loadCsv",
  "lrFinder",
  "lrSchedule",
  "oneCycle",
  "piecewise",
  "pipe",
  "plotSvg",
  "printKeys",
  "progress",
  "reduceLrOnPlateau",
  "serveRuns",
  "setLearningRate",
  "sigmoidCrossEntropy",
  "softmaxCrossEntropy",
  "sparseCategoricalCrossentropy",
  "stage",
  "stepDecay",
  "stepStream",
  "take",
  "tap",
  "terminateOnNaN",
  "tick",
  "timeLimit",
  "toSvg",
  "untilAborted",
  "untilStep",
  "useBackend",
  "validationLoss",
  "validationMetrics",
  "warmupCosine",
];

test("mod.ts exports every value of core.ts, the same binding, and the values it always had", () => {
  for (const [name, value] of Object.entries(core)) assert.equal((mod as Record<string, unknown>)[name], value, name);
  assert.deepEqual(Object.keys(mod).sort(), MOD_VALUES);
});

test("importing cli.ts runs nothing; run as a program it still works", async () => {
  // The probe imports cli.ts with "cli.ts" as its first argument: a CLI that ran would fail on it, printing why.
  const imported = await runScript("tests/fixtures/import_probe.ts", ["cli.ts"]);
  assert.equal(imported.stderr, "");
  assert.equal(imported.code, 0);
  assert.equal(imported.stdout, JSON.stringify({ loaded: true, sync: "not tried" }) + "\n");
  const run = await runScript("cli.ts", ["--help"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^fitstream: chart a run's JSONL log/);
  const bad = await runScript("cli.ts", ["plot"]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "fitstream: plot: name the JSONL log to read\n");
});
