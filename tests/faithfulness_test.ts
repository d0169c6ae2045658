/**
 * The default engine trains what the tfjs path trains, and the tfjs path what
 * `model.fit` trains, for the adversarial cases of `faithfulness_cases.ts`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  CASES,
  explainCase,
  explainGradientCase,
  fitTrace,
  gap,
  GRADIENT_CASES,
  gradientStreamTrace,
  handTrace,
  streamTrace,
} from "./faithfulness_cases.ts";
import "./tf_helpers.ts"; // selects the backend

/** Float32 rounding, grown over the steps of a short run (relative to max(1, |w|)). */
const TOLERANCE = 2e-5;

for (const c of CASES) {
  test(`${c.category}: ${c.name} trains the same on the default path, the tfjs path and model.fit`, async () => {
    const before = tf.memory().numTensors;
    const explained = explainCase(c);
    assert.equal(explained.engine, c.engine, explained.reason);
    if (c.reason) assert.match(explained.reason, c.reason);
    const auto = await streamTrace(c, "auto");
    const tfjs = await streamTrace(c, "tfjs");
    const paths = gap(auto, tfjs);
    assert.ok(paths.weights <= TOLERANCE && paths.loss <= TOLERANCE, `default vs tfjs path: ${JSON.stringify(paths)}`);
    if (c.fit !== false) {
      const fit = await fitTrace(c);
      const toFit = gap(tfjs, fit);
      assert.ok(
        toFit.weights <= TOLERANCE && toFit.loss <= TOLERANCE,
        `tfjs path vs model.fit: ${JSON.stringify(toFit)}`,
      );
    }
    assert.ok(auto.weights.length === c.epochs && auto.weights.every((e) => e.flat().every(Number.isFinite)));
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  });
}

test("an update below half an ulp moves no weight, on either path", async () => {
  const c = CASES.find((k) => k.category === "float32" && k.epochs === 5)!;
  const setup = c.build();
  const start = setup.model.getWeights().map((w) => Array.from(w.dataSync()));
  tf.dispose([setup.x, setup.y]);
  setup.model.dispose();
  for (const engine of ["auto", "tfjs"] as const) {
    const trace = await streamTrace(c, engine);
    assert.deepEqual(trace.weights[trace.weights.length - 1], start, engine);
  }
});

test("a shared layer trains once per step, not once per use", async () => {
  const c = CASES.find((k) => k.category === "shared layer")!;
  const [fit, tfjs] = [await fitTrace(c), await streamTrace(c, "tfjs")];
  assert.ok(gap(fit, tfjs).weights <= TOLERANCE);
  assert.ok(fit.weights[0][0].some((w, i) => w !== fit.weights[1][0][i]), "it trains");
});

for (const c of GRADIENT_CASES) {
  test(`gradients: ${c.name} trains the same on the default path, the tfjs path and a loop written by hand`, async () => {
    const before = tf.memory().numTensors;
    const explained = explainGradientCase(c);
    assert.equal(explained.engine, c.engine, explained.reason);
    const auto = await gradientStreamTrace(c, "auto");
    const tfjs = await gradientStreamTrace(c, "tfjs");
    const hand = handTrace(c);
    const paths = gap(auto, tfjs), toHand = gap(tfjs, hand);
    assert.ok(paths.weights <= TOLERANCE && paths.loss <= TOLERANCE, `default vs tfjs path: ${JSON.stringify(paths)}`);
    assert.ok(
      toHand.weights <= TOLERANCE && toHand.loss <= TOLERANCE,
      `tfjs path vs by hand: ${JSON.stringify(toHand)}`,
    );
    const moved = hand.weights[c.epochs - 1].flat().some((w, i) => w !== hand.weights[0].flat()[i]);
    assert.ok(moved, "it trains");
    assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  });
}
