/**
 * Resuming a run from a checkpoint (`epochStream({ resumeFrom })`): the
 * checkpoint is read and checked against the run when the stream is built
 * (damaged files, another optimizer, other weight shapes fail there), and put
 * back — weights and optimizer state — before the first epoch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { isLayersModel, type ModelLike } from "../engine/model.ts";
import { type CheckpointFiles, decodeCheckpoint, readCheckpointFiles } from "./store.ts";

/** The run to restore into. Internal. */
export interface RunToRestore {
  model: ModelLike;
  optimizer: tf.Optimizer;
  /** The variables a function model trains (a layers model restores all its weights). */
  variables: tf.Variable[];
}

const shapeText = (shape: readonly (number | null)[]) => `[${shape.join(", ")}]`;

/**
 * Reads the checkpoint at `from` and checks that it fits `run`: the same
 * optimizer class, as many weights, each of the same shape. Throws an error
 * starting with `where` that names the folder. Internal.
 */
export function checkResumable(where: string, from: string, run: RunToRestore): CheckpointFiles {
  const files = readCheckpointFiles(where, from);
  const { manifest, path } = files;
  const optimizerClass = run.optimizer.getClassName();
  if (manifest.optimizer.className !== optimizerClass) {
    throw new TypeError(
      `${where}: "${path}" holds ${manifest.optimizer.className} state, but the optimizer is ${optimizerClass}`,
    );
  }
  const own = isLayersModel(run.model) ? run.model.weights.map((w) => w.shape) : run.variables.map((v) => v.shape);
  const saved = manifest.model.weightSpecs.map((s) => s.shape);
  if (saved.length !== own.length) {
    throw new TypeError(`${where}: "${path}" holds ${saved.length} weights, the model has ${own.length}`);
  }
  saved.forEach((shape, i) => {
    if (shapeText(shape) !== shapeText(own[i])) {
      throw new TypeError(
        `${where}: "${path}" holds weight ${i} of shape ${shapeText(shape)}, the model's is ${shapeText(own[i])}: ` +
          `a checkpoint of another model`,
      );
    }
  });
  return files;
}

/**
 * Puts checked checkpoint files back into `run` (weights, optimizer state)
 * and returns the saved step, shuffle state and run identity. Internal.
 */
export async function restoreRun(
  files: CheckpointFiles,
  run: RunToRestore,
): Promise<{ step: number; rngState: number; runId?: string; iterations: number }> {
  const { model, optimizer, variables } = run;
  const saved = decodeCheckpoint(files);
  try {
    const weights = saved.modelWeights.map((w) => w.tensor);
    if (isLayersModel(model)) model.setWeights(weights);
    else variables.forEach((v, i) => v.assign(weights[i]));
    if (saved.optimizerWeights.length > 0) await optimizer.setWeights(saved.optimizerWeights);
    return { step: saved.step, rngState: saved.rngState, runId: saved.runId, iterations: optimizer.iterations };
  } finally {
    tf.dispose([...saved.modelWeights, ...saved.optimizerWeights, ...saved.partWeights].map((w) => w.tensor));
  }
}
