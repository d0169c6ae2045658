/**
 * The option keys of functions whose files are busy with other work (the
 * loaders, checkpoints): listed here so that those files carry a single
 * `checkKeys` call each. A key added to one of their options types and not
 * listed here is a compile error in this file. (`httpSink` keeps its own
 * list, which it gives `selector`.)
 *
 * @module
 */
import type { CsvDatasetOptions } from "../data/csv_dataset.ts";
import type { LoadCsvOptions } from "../data/load_csv.ts";
import type { CheckpointOptions } from "../stages/checkpoint.ts";
import { keysOf } from "./option_keys.ts";

/** The keys of {@link CsvDatasetOptions}. Internal. */
export const CSV_DATASET_KEYS: readonly string[] = keysOf<CsvDatasetOptions>({
  label: true,
  columns: true,
  batchSize: true,
  shuffleBuffer: true,
  seed: true,
  signal: true,
  timeout: true,
});

/** The keys of {@link LoadCsvOptions}. Internal. */
export const LOAD_CSV_KEYS: readonly string[] = keysOf<LoadCsvOptions>({ columns: true, signal: true, timeout: true });

/** The keys of {@link CheckpointOptions}. Internal. */
export const CHECKPOINT_KEYS: readonly string[] = keysOf<CheckpointOptions<string>>({
  dir: true,
  every: true,
  best: true,
  keep: true,
});
