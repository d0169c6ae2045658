// The benchmarks must keep running: each runs in --quick mode and ends with its JSON line.
// Only the shape of the output is checked here, never a timing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript } from "./spawn.ts";

const expectedKeys: Record<string, string[]> = {
  overhead: ["results", "ranges", "cpu"],
  stages: ["library_events_per_s", "generator_events_per_s", "cost_ratio"],
  backends: ["ms_per_epoch", "cpu_over_wasm"],
  scale: ["peak_gflops", "results"],
  dashboard: ["events_per_s", "idle_ratio", "stuck_ratio"],
  profile: ["host_ms_per_epoch", "host_kernels_per_epoch", "tfjs_us_per_step"],
  profile_wide: ["results"],
  soak: ["kills", "lines_lost", "corrupt_checkpoints", "wrong_resumes"],
  collector: ["events_sent", "events_stored", "events_lost", "slowdown"],
  collector_stress: ["lines_lost", "lines_doubled", "unparsable", "stalls_cut", "collector_peak_mb"],
  big_csv: ["memory_rows_per_s", "dataset_rows_per_s", "slowdown", "dataset_peak_rss_mb"],
  tfjs_path_models: ["rows", "batch", "results"],
  step_stream: ["rows", "results"],
  classifier: ["rows", "rounds", "results"],
  layer_engine: ["rows", "results"],
  lstm_engine: ["rows", "default_ms", "tfjs_ms", "ratio"],
  lstm_products: ["results"],
};

for (const [name, keys] of Object.entries(expectedKeys)) {
  test(`bench/${name}.ts runs and ends with a JSON line`, async () => {
    const { code, stdout, stderr } = await runScript(`bench/${name}.ts`, ["--quick"]);
    assert.equal(code, 0, stderr);
    const last = JSON.parse(stdout.trimEnd().split("\n").at(-1)!);
    assert.equal(last.bench, name);
    for (const key of keys) assert.ok(key in last, `${name}: missing ${key}`);
    if (name === "collector") assert.equal(last.events_lost, 0, "no posted event is lost");
    if (name === "collector_stress") {
      assert.deepEqual([last.lines_lost, last.lines_doubled, last.unparsable, last.stalls_cut], [0, 0, 0, 64]);
    }
    if (name === "soak") {
      assert.ok(last.kills >= 1, "at least one round was killed");
      assert.deepEqual([last.lines_lost, last.corrupt_checkpoints, last.wrong_resumes], [0, 0, 0]);
    }
    if (name === "step_stream") {
      for (const batch of ["batch512", "batch32"]) {
        for (const k of ["e_ms", "s_ms", "et_ms", "st_ms", "s/e", "st/et", "s/st"]) {
          assert.equal(typeof last.results[batch][k], "number", `${batch}.${k}`);
        }
      }
    }
    if (name === "overhead") {
      for (const batch of ["batch512", "batch32"]) {
        for (const k of ["a_ms", "b_ms", "a+_ms", "c_ms", "d_ms", "b/a", "c/a+", "d/a"]) {
          assert.equal(typeof last.results[batch][k], "number", `${batch}.${k}`);
        }
      }
    }
  });
}
