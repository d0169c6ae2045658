/**
 * Resuming a run from a checkpoint (`epochStream({ resumeFrom })`): puts the
 * saved weights and optimizer state back and says where the run was.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { isLayersModel, type ModelLike } from "../engine/model.ts";
import { loadCheckpoint } from "./store.ts";

/** The run to restore into. Internal. */
export interface RunToRestore {
  model: ModelLike;
  optimizer: tf.Optimizer;
  /** The variables a function model trains (a layers model restores all its weights). */
  variables: tf.Variable[];
}

/**
 * Loads the checkpoint at `from` into `run` (weights, optimizer state) and
 * returns the saved step and shuffle state. Internal.
 */
export async function restoreRun(from: string, run: RunToRestore): Promise<{ step: number; rngState: number }> {
  const { model, optimizer, variables } = run;
  const saved = await loadCheckpoint(from);
  try {
    if (saved.optimizerClass !== optimizer.getClassName()) {
      throw new TypeError(
        `epochStream: resumeFrom: "${saved.path}" holds ${saved.optimizerClass} state, ` +
          `but the optimizer is ${optimizer.getClassName()}`,
      );
    }
    const weights = saved.modelWeights.map((w) => w.tensor);
    if (isLayersModel(model)) {
      model.setWeights(weights);
    } else {
      if (weights.length !== variables.length) {
        throw new TypeError(
          `epochStream: resumeFrom: "${saved.path}" holds ${weights.length} variables, the model has ${variables.length}`,
        );
      }
      variables.forEach((v, i) => v.assign(weights[i]));
    }
    if (saved.optimizerWeights.length > 0) await optimizer.setWeights(saved.optimizerWeights);
    return { step: saved.step, rngState: saved.rngState };
  } finally {
    tf.dispose(saved.modelWeights.map((w) => w.tensor));
    tf.dispose(saved.optimizerWeights.map((w) => w.tensor));
  }
}
