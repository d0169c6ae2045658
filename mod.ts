/**
 * fitstream: a TensorFlow.js training loop as a lazy stream of per-epoch events.
 *
 * `epochStream(...)` trains one epoch per read; stages (`augment`, `ema`,
 * `tap`, `take`, `earlyStop`, …) compose with `pipe(...)` or `.pipeThrough(...)`;
 * sinks (`collect`, `jsonlSink`, `collectJsonl`) consume the result. Library
 * stages never read ahead: epoch `n` trains only once event `n` is asked for.
 *
 * @example Stages on any stream of events
 * ```ts
 * import { collect, ema, earlyStop, pipe, take } from "@fitstream/fitstream";
 *
 * const losses = [1.0, 0.8, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7];
 * const source = ReadableStream.from(losses.map((val_loss, i) => ({ step: i + 1, val_loss })));
 * const rows = await collect(pipe(
 *   source,
 *   ema("val_loss", { halfLife: 2 }),
 *   take(100),
 *   earlyStop({ key: "val_loss_ema", patience: 2 }),
 * ));
 * // stopped after two epochs without improvement of the smoothed loss:
 * console.log(rows.length); // 5
 * ```
 *
 * @module
 */
// The stream core (pipeline, generic stages, sinks) is core.ts, listed once there.
export * from "./core.ts";
export {
  type EngineChoice,
  type EngineExplanation,
  epochStream,
  type EpochStreamOptions,
  explainEngine,
} from "./src/source/epoch_stream.ts";
export { stepStream } from "./src/source/step_stream.ts";
export { lrFinder, type LrFinderOptions, type LrFinderResult } from "./src/source/lr_finder.ts";
export { lrSchedule } from "./src/stages/lr_schedule.ts";
export { emaWeights, type EmaWeightsOptions, type EmaWeightsStage } from "./src/stages/ema_weights.ts";
export { getLearningRate, setLearningRate } from "./src/engine/learning_rate.ts";
export { iterBatches, type IterBatchesOptions } from "./src/source/iter_batches.ts";
export { validationLoss, type ValidationLossOptions } from "./src/source/validation_loss.ts";
export * from "./src/source/validation_metrics.ts";
export { sigmoidCrossEntropy, softmaxCrossEntropy } from "./src/losses/cross_entropy.ts";
export { categoricalCrossentropy, sparseCategoricalCrossentropy } from "./src/losses/categorical.ts";
export { type BackendName, type BackendOptions, useBackend } from "./src/source/backend.ts";
export type { FunctionModel, LossFunction, ModelLike } from "./src/engine/model.ts";
export { type CsvSource, type CsvTable, loadCsv, type LoadCsvOptions } from "./src/data/load_csv.ts";
export { type CsvBatch, type CsvDataset, csvDataset, type CsvDatasetOptions } from "./src/data/csv_dataset.ts";
export type { BatchDataset, PassAware } from "./src/data/dataset.ts";
export type {
  Dataset,
  IOHandler,
  LayersModel,
  Optimizer,
  Tensor,
  Tensor2D,
  TensorContainer,
  TfDataset,
  Variable,
} from "./src/tf_types.ts";
export { checkpoint, type CheckpointOptions } from "./src/stages/checkpoint.ts";
export { reduceLrOnPlateau, type ReduceLrOnPlateauOptions } from "./src/stages/reduce_lr.ts";
export { checkpointModel, loadCheckpoint, type LoadedCheckpoint, type NamedTensor } from "./src/checkpoint/store.ts";
export { type CollectOptions, type RunsServer, serveRuns, type ServeRunsOptions } from "./src/dashboard/runs_server.ts";
export { dashboard, type DashboardOptions, type DashboardStage } from "./src/dashboard/dashboard.ts";
export { fromJsonl, type FromJsonlOptions } from "./src/source/from_jsonl.ts";
export type { ReadOptions } from "./src/data/open_input.ts";
