/**
 * fitstream's stream core, without TensorFlow.js: the pipeline machinery
 * (`pipe`, `stage`, `Stage`, `EventStream`), the generic stages and the
 * sinks. Importing it loads no tfjs, so stages and sinks can be used (and
 * tested) on any stream of plain events. Everything here is also exported
 * from the main entry point.
 *
 * @example Stages on plain events
 * ```ts
 * import { collect, ema, pipe, take } from "@fitstream/fitstream/core";
 *
 * const source = ReadableStream.from([{ step: 1, loss: 10 }, { step: 2, loss: 20 }, { step: 3, loss: 30 }]);
 * const rows = await collect(pipe(source, ema("loss", { decay: 0.5 }), take(2)));
 * console.log(rows.map((r) => Number(r.loss_ema.toFixed(4)))); // [10, 16.6667]
 * ```
 *
 * @module
 */
export { EventStream } from "./src/stream/event_stream.ts";
export { Stage } from "./src/stream/stage.ts";
export { stage, type StepControl, type StepEnd, type StepHandler, type StepOptions } from "./src/stream/step_stage.ts";
export { type Optional, pipe, type StageLike } from "./src/stream/pipe.ts";
export { type Added, augment, type AugmentResult } from "./src/stages/augment.ts";
export { take } from "./src/stages/take.ts";
export { tap, type TapOptions, tick } from "./src/stages/tap.ts";
export { ema, type EmaOptions } from "./src/stages/ema.ts";
export { earlyStop, type EarlyStopOptions } from "./src/stages/early_stop.ts";
export { printKeys, type PrintKeysOptions } from "./src/stages/print_keys.ts";
export { terminateOnNaN, untilAborted } from "./src/stages/guards.ts";
export { progress, type ProgressOptions, type ProgressOutput } from "./src/stages/progress.ts";
export { timeLimit, type TimeLimitOptions, untilStep } from "./src/stages/limits.ts";
export {
  exponentialDecay,
  type ExponentialDecayOptions,
  oneCycle,
  type OneCycleOptions,
  piecewise,
  type PiecewiseOptions,
  type Schedule,
  stepDecay,
  type StepDecayOptions,
  warmupCosine,
  type WarmupCosineOptions,
} from "./src/stages/schedules.ts";
export { collect } from "./src/sinks/collect.ts";
export { collectJsonl, type JsonlDestination, type JsonlOptions, jsonlSink } from "./src/sinks/jsonl.ts";
export { type HttpSink, httpSink, type HttpSinkOptions, type HttpSinkStats } from "./src/sinks/http_sink.ts";
export type { SelectOptions } from "./src/sinks/select.ts";
export { plotSvg, type SvgOptions, toSvg } from "./src/sinks/svg.ts";
export type { EpochEvent, EpochFields, Merge, NumericKey, StepEvent, StepFields, WithNumber } from "./src/types.ts";
