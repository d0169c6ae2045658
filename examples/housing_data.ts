/**
 * The tutorial's data: California housing, loaded from a folder or URLs,
 * as standardised feature tensors and labels in units of $100,000.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CsvSource, loadCsv } from "../mod.ts";

/** The tutorial's two files. */
export const TRAIN_URL = "https://download.mlcc.google.com/mledu-datasets/california_housing_train.csv";
/** The tutorial's held-out file. */
export const TEST_URL = "https://download.mlcc.google.com/mledu-datasets/california_housing_test.csv";

/** The copy shipped with the example. */
export const LOCAL_DIR: string = fileURLToPath(new URL("./data/", import.meta.url));

/** All eight numeric features. */
export const FEATURES: readonly string[] = [
  "longitude",
  "latitude",
  "housing_median_age",
  "total_rooms",
  "total_bedrooms",
  "population",
  "households",
  "median_income",
];
/** The regression target. */
export const LABEL = "median_house_value";
/** Labels are divided by this, so the model predicts hundreds of thousands of dollars. */
export const Y_SCALE = 100_000;

/** Where the two CSVs come from. */
export interface HousingSources {
  train: CsvSource;
  test: CsvSource;
}

/**
 * Resolves `--data`: a folder holding the two CSVs, a base URL ending in `/`,
 * or `"remote"` for the tutorial's URLs (overridable with the environment
 * variables `HOUSING_TRAIN_URL` and `HOUSING_TEST_URL`, for tests).
 */
export function housingSources(data: string = LOCAL_DIR, env: Record<string, string | undefined> = {}): HousingSources {
  if (data === "remote") return { train: env.HOUSING_TRAIN_URL ?? TRAIN_URL, test: env.HOUSING_TEST_URL ?? TEST_URL };
  if (/^https?:\/\//.test(data)) {
    const base = data.endsWith("/") ? data : `${data}/`;
    return { train: `${base}california_housing_train.csv`, test: `${base}california_housing_test.csv` };
  }
  return { train: join(data, "california_housing_train.csv"), test: join(data, "california_housing_test.csv") };
}

/** Training and validation tensors; `dispose()` frees them. */
export interface Housing {
  xTrain: tf.Tensor2D;
  yTrain: tf.Tensor2D;
  xVal: tf.Tensor2D;
  yVal: tf.Tensor2D;
  dispose(): void;
}

/**
 * Loads the two CSVs, keeps `features`, standardises them with the training
 * set's mean and (sample) standard deviation, and scales the labels.
 * Pass `standardize: false` for the raw features, and a `signal` to cancel
 * the loads (Ctrl-C while a URL is slow).
 */
export async function loadHousing(
  sources: HousingSources = housingSources(),
  features: readonly string[] = FEATURES,
  standardize = true,
  signal?: AbortSignal,
): Promise<Housing> {
  const columns = [...features, LABEL];
  const [train, test] = await Promise.all([
    loadCsv(sources.train, { columns, signal }),
    loadCsv(sources.test, { columns, signal }),
  ]);
  const tensors = tf.tidy(() => {
    let xTrain = train.tensor(features);
    let xVal = test.tensor(features);
    if (standardize) {
      const mean = xTrain.mean(0, true);
      const std = xTrain.sub(mean).square().sum(0, true).div(xTrain.shape[0] - 1).sqrt().maximum(1e-6);
      xTrain = xTrain.sub(mean).div(std);
      xVal = xVal.sub(mean).div(std);
    }
    return {
      xTrain: xTrain as tf.Tensor2D,
      xVal: xVal as tf.Tensor2D,
      yTrain: train.tensor([LABEL]).div(Y_SCALE) as tf.Tensor2D,
      yVal: test.tensor([LABEL]).div(Y_SCALE) as tf.Tensor2D,
    };
  });
  return { ...tensors, dispose: () => tf.dispose(Object.values(tensors)) };
}

/** The tutorial's MLP: features → 64 (ReLU) → 1, with seeded initial weights. */
export function housingModel(inputs: number, seed = 0): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 64,
        activation: "relu",
        inputShape: [inputs],
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
}

/**
 * An augmenter: the L2 norm of all the model's parameters, as `param_l2`.
 * (Generic in the event, so the keys of the events it sees flow through.)
 */
export function modelParamNorm<E extends { model: tf.LayersModel }>(event: E): { param_l2: number } {
  const norm = tf.tidy(() => tf.addN(event.model.getWeights().map((w) => w.square().sum())).sqrt());
  const value = norm.dataSync()[0];
  norm.dispose();
  return { param_l2: value };
}
