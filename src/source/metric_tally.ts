/**
 * The metrics of `validationMetrics`: what each spelling means, which
 * labels it needs, and running tallies fed batch by batch from host copies
 * of the predictions and labels, so that every metric comes out of one
 * forward pass over the validation data.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { describe } from "../internal/describe.ts";
import { nearestKey } from "../internal/option_keys.ts";
import type { Tensor } from "../tf_types.ts";

/** A built-in metric, by name. */
export type MetricName = "accuracy" | "precision" | "recall" | "f1" | "confusion" | "mae" | "rmse" | "r2";

/**
 * A built-in metric with a setting: top-k accuracy (`{ topK: 3 }`), or the
 * precision, recall or F1 of one class (`{ precision: 1 }`: the positive class
 * of a single sigmoid output).
 */
export type MetricSetting = { topK: number } | { precision: number } | { recall: number } | { f1: number };

/**
 * Your own metric, on the whole validation set at once: the predictions
 * (rows × outputs, inference mode) and the labels as the data holds them;
 * returns a number or a scalar tensor (freed for you, as is everything it
 * makes).
 */
export type MetricFunction = (predictions: Tensor, labels: Tensor) => number | Tensor;

/** A metric of {@link validationMetrics}: a name, a name with a setting, or a function. */
export type Metric = MetricName | MetricSetting | MetricFunction;

/** What the metrics `M` add to an event: a number for each, and a `number[][]` for a confusion matrix. */
export type MetricValues<M> = { -readonly [K in keyof M]: M[K] extends "confusion" ? number[][] : number };

const NAMES: readonly MetricName[] = ["accuracy", "precision", "recall", "f1", "confusion", "mae", "rmse", "r2"];
const SETTINGS = ["topK", "precision", "recall", "f1"] as const;
const CLASSIFYING = new Set(["accuracy", "precision", "recall", "f1", "confusion", "topK"]);

/** A metric as parsed. Internal. */
export type ParsedMetric =
  | { key: string; kind: "accuracy" | "confusion" }
  | { key: string; kind: "precision" | "recall" | "f1"; cls?: number }
  | { key: string; kind: "topK"; k: number }
  | { key: string; kind: "mae" | "rmse" | "r2" }
  | { key: string; kind: "custom"; fn: MetricFunction };

/** What a metric is called in messages: `metrics.val_acc ("accuracy")`. */
function label(m: ParsedMetric): string {
  const spelled = m.kind === "custom"
    ? "a function"
    : m.kind === "topK"
    ? `{ topK: ${m.k} }`
    : "cls" in m && m.cls !== undefined
    ? `{ ${m.kind}: ${m.cls} }`
    : `"${m.kind}"`;
  return `metrics.${m.key} (${spelled})`;
}

/** Parses the `metrics` option, or throws naming the key at fault. Internal. */
export function parseMetrics(where: string, metrics: unknown): ParsedMetric[] {
  if (typeof metrics !== "object" || metrics === null || Array.isArray(metrics)) {
    throw new TypeError(
      `${where}: metrics must be an object of key: metric (e.g. { val_acc: "accuracy" }), got ${describe(metrics)}`,
    );
  }
  const entries = Object.entries(metrics);
  if (entries.length === 0) throw new TypeError(`${where}: metrics is empty: name at least one`);
  return entries.map(([key, spec]): ParsedMetric => {
    if (key === "") throw new TypeError(`${where}: metrics has an empty key: name each metric's key`);
    if (key === "model" || key === "step") {
      throw new TypeError(`${where}: metrics key "${key}" would replace the event's own ${key}: name it otherwise`);
    }
    const at = `${where}: metrics.${key}`;
    if (typeof spec === "function") return { key, kind: "custom", fn: spec as MetricFunction };
    if (typeof spec === "string") {
      if ((NAMES as readonly string[]).includes(spec)) return { key, kind: spec as MetricName } as ParsedMetric;
      const near = nearestKey(spec, NAMES);
      throw new TypeError(
        `${at} must be one of ${NAMES.join(", ")}, { topK: k }, { precision | recall | f1: class } or a function, ` +
          `got ${describe(spec)}` + (near ? `; did you mean "${near}"?` : ""),
      );
    }
    if (typeof spec === "object" && spec !== null && !Array.isArray(spec)) {
      const keys = Object.keys(spec);
      const [name] = keys;
      if (keys.length !== 1 || !(SETTINGS as readonly string[]).includes(name)) {
        const near = keys.length === 1 ? nearestKey(name, SETTINGS) : undefined;
        throw new TypeError(
          `${at} must hold one of topK, precision, recall or f1, got { ${keys.join(", ")} }` +
            (near ? `; did you mean "${near}"?` : ""),
        );
      }
      const value = (spec as Record<string, unknown>)[name];
      const min = name === "topK" ? 1 : 0;
      if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
        throw new RangeError(`${at}.${name} must be an integer >= ${min}, got ${describe(value)}`);
      }
      return name === "topK"
        ? { key, kind: "topK", k: value }
        : { key, kind: name as "precision" | "recall" | "f1", cls: value };
    }
    throw new TypeError(
      `${at} must be a metric name ("accuracy"), a setting ({ topK: 3 }) or a function, got ${describe(spec)}`,
    );
  });
}

function shapeOf(shape: readonly number[]): string {
  return `[${["rows", ...shape].join(", ")}]`;
}

/**
 * How labels are read for the class metrics: `ids` (one class id per row),
 * `rows` (one-hot or probability rows: the class is the largest), or
 * `binary` (one sigmoid output: a label above 0.5 is class 1).
 */
type LabelForm = "ids" | "rows" | "binary";

/** The shapes one row of predictions and labels have, checked against every metric. Internal. */
export interface Layout {
  /** Prediction values per row. */
  outputs: number;
  /** Label values per row. */
  labelWidth: number;
  /** Classes of the class metrics: the outputs, or 2 for a single sigmoid output. */
  classes: number;
  form: LabelForm;
}

/**
 * Checks each metric against one row's shapes of predictions and labels, or
 * throws a `TypeError` naming the metric and the shapes. Internal.
 */
export function layoutFor(
  where: string,
  metrics: ParsedMetric[],
  predRow: readonly number[],
  labelRow: readonly number[],
): Layout {
  const outputs = predRow.reduce((a, b) => a * b, 1), labelWidth = labelRow.reduce((a, b) => a * b, 1);
  const classes = outputs === 1 ? 2 : outputs;
  const oneId = labelWidth === 1 && labelRow.length <= 1;
  const form: LabelForm = outputs === 1 ? "binary" : oneId ? "ids" : "rows";
  for (const m of metrics) {
    if (CLASSIFYING.has(m.kind)) {
      if (predRow.length !== 1) {
        throw new TypeError(
          `${where}: ${label(m)} needs predictions of one row of class scores ([rows, classes]), got ` +
            shapeOf(predRow),
        );
      }
      const fits = outputs === 1 ? oneId : oneId || (labelRow.length === 1 && labelRow[0] === outputs);
      if (!fits) {
        const wanted = outputs === 1
          ? "one 0/1 label per row ([rows] or [rows, 1])"
          : `one class id per row ([rows] or [rows, 1]) or one-hot rows ([rows, ${outputs}])`;
        throw new TypeError(
          `${where}: ${label(m)} needs labels of ${wanted} for predictions ${shapeOf(predRow)}, got labels ` +
            shapeOf(labelRow),
        );
      }
      if (m.kind === "topK" && outputs === 1) {
        throw new TypeError(`${where}: ${label(m)} needs predictions of 2 or more classes, got ${shapeOf(predRow)}`);
      }
      if ("cls" in m && m.cls !== undefined && m.cls >= classes) {
        throw new RangeError(`${where}: ${label(m)} names class ${m.cls}, but the model predicts ${classes} classes`);
      }
    } else if (m.kind !== "custom" && labelWidth !== outputs) {
      throw new TypeError(
        `${where}: ${label(m)} needs labels shaped like the predictions ${shapeOf(predRow)}, got labels ` +
          shapeOf(labelRow),
      );
    }
  }
  return { outputs, labelWidth, classes, form };
}

/** Index of the largest of `values[from … from+count-1]` (the first at a tie), or -1 if one is NaN. */
function argmax(values: ArrayLike<number>, from: number, count: number): number {
  let best = 0, top = values[from];
  for (let j = 0; j < count; j++) {
    const v = values[from + j];
    if (Number.isNaN(v)) return -1;
    if (v > top) {
      top = v;
      best = j;
    }
  }
  return best;
}

/**
 * Running tallies of every metric over the batches of one validation pass:
 * `add` each batch's predictions and labels (host copies, row-major), then
 * `values()`. Internal.
 */
export class MetricTally {
  #where: string;
  #metrics: ParsedMetric[];
  #layout: Layout;
  #rows = 0;
  /** confusion[true][predicted], over rows whose predictions are numbers. */
  #confusion: number[][] | undefined;
  /** Rows with NaN among their predictions (their class metrics are NaN). */
  #nanRows = 0;
  /** Rows whose true class is among the top k, per k. */
  #topK = new Map<number, number>();
  /** Per output: Σ|error|, Σ error², and the labels' count, mean and squared deviations (Welford). */
  #absError = 0;
  #squaredError: Float64Array;
  #labelMean: Float64Array;
  #labelM2: Float64Array;
  /** The batches, kept for custom metrics only. */
  #kept: { pred: Float32Array; labels: tf.TypedArray }[] = [];
  #labelDtype: tf.DataType = "float32";
  #predRow: number[];
  #labelRow: number[];

  constructor(where: string, metrics: ParsedMetric[], layout: Layout, predRow: number[], labelRow: number[]) {
    this.#where = where;
    this.#metrics = metrics;
    this.#layout = layout;
    this.#predRow = predRow;
    this.#labelRow = labelRow;
    if (metrics.some((m) => CLASSIFYING.has(m.kind))) {
      this.#confusion = Array.from({ length: layout.classes }, () => new Array<number>(layout.classes).fill(0));
    }
    for (const m of metrics) if (m.kind === "topK") this.#topK.set(m.k, 0);
    this.#squaredError = new Float64Array(layout.outputs);
    this.#labelMean = new Float64Array(layout.outputs);
    this.#labelM2 = new Float64Array(layout.outputs);
  }

  /** Adds a batch of `n` rows. `firstRow` numbers its rows in messages. */
  add(pred: Float32Array, labels: tf.TypedArray, labelDtype: tf.DataType, n: number, firstRow: number): void {
    const { outputs, labelWidth } = this.#layout;
    if (this.#confusion) this.#addClasses(pred, labels, n, firstRow);
    if (this.#metrics.some((m) => m.kind === "mae" || m.kind === "rmse" || m.kind === "r2")) {
      for (let r = 0; r < n; r++) {
        const count = this.#rows + r + 1;
        for (let j = 0; j < outputs; j++) {
          const y = labels[r * labelWidth + j], e = pred[r * outputs + j] - y;
          this.#absError += Math.abs(e);
          this.#squaredError[j] += e * e;
          const delta = y - this.#labelMean[j];
          this.#labelMean[j] += delta / count;
          this.#labelM2[j] += delta * (y - this.#labelMean[j]);
        }
      }
    }
    if (this.#metrics.some((m) => m.kind === "custom")) {
      this.#kept.push({ pred: pred.slice(0, n * outputs), labels: labels.slice(0, n * labelWidth) });
      this.#labelDtype = labelDtype;
    }
    this.#rows += n;
  }

  #addClasses(pred: Float32Array, labels: tf.TypedArray, n: number, firstRow: number): void {
    const { outputs, labelWidth, classes, form } = this.#layout;
    const confusion = this.#confusion!;
    for (let r = 0; r < n; r++) {
      let truth: number;
      if (form === "rows") {
        truth = argmax(labels, r * labelWidth, labelWidth);
        if (truth < 0) throw new RangeError(`${this.#where}: labels row ${firstRow + r} holds NaN`);
      } else if (form === "binary") {
        truth = labels[r] > 0.5 ? 1 : 0;
      } else {
        truth = labels[r];
        if (!Number.isInteger(truth) || truth < 0 || truth >= classes) {
          throw new RangeError(
            `${this.#where}: labels row ${firstRow + r} holds ${truth}, not a class id in [0, ${classes}) ` +
              `(the model predicts ${classes} classes)`,
          );
        }
      }
      const o = r * outputs;
      const guess = form === "binary" ? (Number.isNaN(pred[o]) ? -1 : pred[o] > 0.5 ? 1 : 0) : argmax(pred, o, outputs);
      if (guess < 0) {
        this.#nanRows++;
        continue;
      }
      confusion[truth][guess]++;
      if (this.#topK.size > 0) {
        const score = pred[o + truth];
        let above = 0;
        for (let j = 0; j < outputs; j++) above += pred[o + j] > score ? 1 : 0;
        for (const [k, hits] of this.#topK) if (above < k) this.#topK.set(k, hits + 1);
      }
    }
  }

  /** Each metric's value, in the order given. */
  values(): Record<string, number | number[][]> {
    const out: Record<string, number | number[][]> = {};
    for (const m of this.#metrics) out[m.key] = this.#value(m);
    return out;
  }

  #value(m: ParsedMetric): number | number[][] {
    const rows = this.#rows, outputs = this.#layout.outputs;
    const nan = this.#nanRows > 0;
    switch (m.kind) {
      case "confusion":
        return this.#confusion!.map((row) => row.slice());
      case "accuracy":
        return nan ? NaN : this.#confusion!.reduce((sum, row, i) => sum + row[i], 0) / rows;
      case "topK":
        return nan ? NaN : this.#topK.get(m.k)! / rows;
      case "precision":
      case "recall":
      case "f1":
        return nan ? NaN : this.#classScore(m.kind, m.cls);
      case "mae":
        return this.#absError / (rows * outputs);
      case "rmse":
        return Math.sqrt(this.#squaredError.reduce((a, b) => a + b, 0) / (rows * outputs));
      case "r2": {
        // scikit-learn's r2_score: 1 − SS_res / SS_tot per output, averaged; an output with constant labels
        // scores 1 when predicted exactly, else 0.
        let sum = 0;
        for (let j = 0; j < outputs; j++) {
          const res = this.#squaredError[j], tot = this.#labelM2[j];
          sum += tot === 0 ? (res === 0 ? 1 : 0) : 1 - res / tot;
        }
        return sum / outputs;
      }
      case "custom":
        return this.#custom(m);
    }
  }

  /**
   * Precision, recall or F1 of class `cls`, or their macro average (as
   * scikit-learn's `average="macro"`: over the classes that occur in the
   * labels or the predictions; a class never predicted has precision 0).
   */
  #classScore(kind: "precision" | "recall" | "f1", cls: number | undefined): number {
    const confusion = this.#confusion!, classes = confusion.length;
    const score = (c: number) => {
      let predicted = 0, actual = 0;
      for (let i = 0; i < classes; i++) {
        predicted += confusion[i][c];
        actual += confusion[c][i];
      }
      const hits = confusion[c][c];
      const precision = predicted === 0 ? 0 : hits / predicted, recall = actual === 0 ? 0 : hits / actual;
      if (kind === "precision") return precision;
      if (kind === "recall") return recall;
      return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    };
    if (cls !== undefined) return score(cls);
    let sum = 0, counted = 0;
    for (let c = 0; c < classes; c++) {
      const seen = confusion[c].some((v) => v > 0) || confusion.some((row) => row[c] > 0);
      if (!seen) continue;
      sum += score(c);
      counted++;
    }
    return counted === 0 ? NaN : sum / counted;
  }

  #custom(m: ParsedMetric & { kind: "custom" }): number {
    const kept = this.#kept, rows = this.#rows;
    const join = <A extends tf.TypedArray>(parts: A[], make: new (n: number) => A): A => {
      const out = new make(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p as unknown as ArrayLike<number>, at);
        at += p.length;
      }
      return out;
    };
    const predValues = join(kept.map((b) => b.pred), Float32Array);
    const labelParts = kept.map((b) => b.labels);
    const labelValues = join(labelParts, labelParts[0].constructor as new (n: number) => tf.TypedArray);
    let result: unknown;
    try {
      result = tf.tidy(() => {
        const predictions = tf.tensor(predValues, [rows, ...this.#predRow], "float32");
        const labels = tf.tensor(labelValues, [rows, ...this.#labelRow], this.#labelDtype);
        const value: unknown = m.fn(predictions, labels);
        return value instanceof tf.Tensor ? value.clone() : (value as tf.Tensor);
      });
    } catch (error) {
      throw new Error(`${this.#where}: metrics.${m.key} failed: ${(error as Error).message}`, { cause: error });
    }
    if (typeof result === "number") return result;
    if (result instanceof tf.Tensor) {
      try {
        if (result.size !== 1) {
          throw new TypeError(
            `${this.#where}: metrics.${m.key} must return a number or a scalar tf.Tensor, got a Tensor of shape ` +
              `[${result.shape.join(", ")}]`,
          );
        }
        return result.dataSync()[0];
      } finally {
        result.dispose();
      }
    }
    throw new TypeError(
      `${this.#where}: metrics.${m.key} must return a number or a scalar tf.Tensor, got ${describe(result)}`,
    );
  }
}
