/**
 * Checkpoints on disk: a model's topology and weights, the optimizer's state,
 * the step and the shuffle state, written atomically (into a hidden temporary
 * folder, then renamed into place) through `node:fs`, on Deno and Bun alike.
 *
 * Layout of one checkpoint folder (`<dir>/step-000012/` or `<dir>/best/`):
 * `checkpoint.json` (format, step, shuffle state, topology, weight specs) and
 * `model.weights.bin` and `optimizer.weights.bin`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isLayersModel, type ModelLike } from "../engine/model.ts";
import type { IOHandler, Tensor } from "../tf_types.ts";

const FORMAT = "fitstream-checkpoint/1";

/** A tensor with the name it is saved under. */
export interface NamedTensor {
  /** The name it is saved under. */
  name: string;
  /** The values. */
  tensor: Tensor;
}

interface Manifest {
  format: string;
  step: number;
  rng_state: number;
  model: { topology: unknown | null; weightSpecs: tf.io.WeightsManifestEntry[] };
  optimizer: { className: string; weightSpecs: tf.io.WeightsManifestEntry[] };
}

/** What a checkpoint holds once read back. */
export interface LoadedCheckpoint {
  /** The folder read. */
  path: string;
  /** The epoch the checkpoint was taken after. */
  step: number;
  /** The shuffle generator's state after that epoch. */
  rngState: number;
  /** Model weights, in the model's own order. */
  modelWeights: NamedTensor[];
  /** Optimizer state, in the optimizer's own order. */
  optimizerWeights: NamedTensor[];
  /** The optimizer's class name, e.g. `"Adam"`. */
  optimizerClass: string;
  /** The layers model's topology, or `null` for a function model. */
  topology: unknown | null;
}

function joinBuffers(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/** A step folder's name: `step-000012`. */
export function stepFolder(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

/** The newest complete `step-*` folder under `dir`, or `dir` itself if it is a checkpoint. */
export function latestCheckpoint(dir: string): string | undefined {
  if (existsSync(join(dir, "checkpoint.json"))) return dir;
  if (!existsSync(dir)) return undefined;
  const steps = readdirSync(dir).filter((n) => /^step-\d+$/.test(n) && existsSync(join(dir, n, "checkpoint.json")));
  steps.sort();
  return steps.length ? join(dir, steps[steps.length - 1]) : undefined;
}

/** The `step-*` folders under `dir`, oldest first. Internal. */
export function stepFolders(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^step-\d+$/.test(n)).sort();
}

/**
 * Writes a checkpoint of `model` and `optimizer` to `target` atomically: the
 * files go into a hidden sibling folder that is renamed to `target` when
 * complete, so a crash leaves either the previous checkpoint or the new one.
 */
export async function saveCheckpoint(
  target: string,
  parts: { model: ModelLike; variables: tf.Variable[]; optimizer: tf.Optimizer; step: number; rngState: number },
): Promise<void> {
  const { model, variables, optimizer, step, rngState } = parts;
  let topology: unknown | null = null;
  let modelSpecs: tf.io.WeightsManifestEntry[];
  let modelData: Uint8Array;
  if (isLayersModel(model)) {
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler((a) => {
      artifacts = a;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
    }));
    topology = artifacts!.modelTopology ?? null;
    modelSpecs = artifacts!.weightSpecs ?? [];
    modelData = joinBuffers(artifacts!.weightData);
  } else {
    const encoded = await tf.io.encodeWeights(variables.map((v, i) => ({ name: `variable_${i}`, tensor: v })));
    modelSpecs = encoded.specs;
    modelData = joinBuffers(encoded.data);
  }
  const optimizerWeights = await optimizer.getWeights();
  const encodedOptimizer = await tf.io.encodeWeights(optimizerWeights);
  tf.dispose(optimizerWeights.filter((w) => w.name === "iter").map((w) => w.tensor));
  const manifest: Manifest = {
    format: FORMAT,
    step,
    rng_state: rngState,
    model: { topology, weightSpecs: modelSpecs },
    optimizer: { className: optimizer.getClassName(), weightSpecs: encodedOptimizer.specs },
  };
  const parent = join(target, "..");
  const temp = join(parent, `.tmp-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  await mkdir(temp, { recursive: true });
  try {
    await writeFile(join(temp, "model.weights.bin"), modelData);
    await writeFile(join(temp, "optimizer.weights.bin"), joinBuffers(encodedOptimizer.data));
    await writeFile(join(temp, "checkpoint.json"), JSON.stringify(manifest));
    if (existsSync(target)) {
      const old = join(parent, `.old-${Date.now()}-${Math.random().toString(36).slice(2)}`);
      await rename(target, old);
      await rename(temp, target);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, target);
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

function decodeInOrder(data: Uint8Array, specs: tf.io.WeightsManifestEntry[]): NamedTensor[] {
  const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  const map = tf.io.decodeWeights(buffer, specs);
  return specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
}

/**
 * Reads the checkpoint at `path` (a checkpoint folder, or a folder of
 * `step-*` checkpoints: the newest): its step, shuffle state, model weights
 * and optimizer state. The caller owns the tensors it returns.
 *
 * @example Look inside the newest checkpoint of a run
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { mkdtempSync } from "node:fs";
 * import { join } from "node:path";
 * import { tmpdir } from "node:os";
 * import { checkpoint, collect, epochStream, loadCheckpoint, pipe, take } from "@fitstream/fitstream";
 *
 * const dir = join(mkdtempSync(join(tmpdir(), "fitstream-")), "ckpt");
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * const x = tf.tensor2d([[0], [1], [2]]);
 * const data = [x, x.mul(2)];
 * const optimizer = tf.train.adam(0.1);
 * const loss = tf.losses.meanSquaredError;
 * await collect(pipe(epochStream({ data, model, optimizer, loss, seed: 1 }), checkpoint({ dir }), take(2)));
 * const saved = await loadCheckpoint(dir);
 * console.log(saved.step); // 2
 * console.log(saved.optimizerClass); // "Adam"
 * console.log(saved.modelWeights.map((w) => w.tensor.shape)); // [[1, 1], [1]]
 * tf.dispose([...saved.modelWeights, ...saved.optimizerWeights].map((w) => w.tensor));
 * ```
 */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const folder = latestCheckpoint(path);
  if (!folder) throw new Error(`no checkpoint found in "${path}"`);
  const manifest = JSON.parse(await readFile(join(folder, "checkpoint.json"), "utf8")) as Manifest;
  if (manifest.format !== FORMAT) throw new Error(`"${folder}" is not a fitstream checkpoint (${manifest.format})`);
  const [modelData, optimizerData] = await Promise.all([
    readFile(join(folder, "model.weights.bin")),
    readFile(join(folder, "optimizer.weights.bin")),
  ]);
  return {
    path: folder,
    step: manifest.step,
    rngState: manifest.rng_state,
    topology: manifest.model.topology,
    optimizerClass: manifest.optimizer.className,
    modelWeights: decodeInOrder(new Uint8Array(modelData), manifest.model.weightSpecs),
    optimizerWeights: decodeInOrder(new Uint8Array(optimizerData), manifest.optimizer.weightSpecs),
  };
}

/**
 * A `tf.io` handler that loads the layers model saved in a checkpoint folder
 * (or the newest one under a folder of checkpoints), for `tf.loadLayersModel`.
 *
 * @example Load the latest checkpoint's model
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs";
 * import { checkpointModel } from "@fitstream/fitstream";
 *
 * const model = await tf.loadLayersModel(checkpointModel("runs/checkpoints"));
 * ```
 */
export function checkpointModel(path: string): IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const folder = latestCheckpoint(path);
      if (!folder) throw new Error(`no checkpoint found in "${path}"`);
      const manifest = JSON.parse(await readFile(join(folder, "checkpoint.json"), "utf8")) as Manifest;
      if (manifest.model.topology === null) {
        throw new Error(`"${folder}" holds a function model's variables, not a layers model`);
      }
      const data = new Uint8Array(await readFile(join(folder, "model.weights.bin")));
      return {
        modelTopology: manifest.model.topology as tf.io.ModelArtifacts["modelTopology"],
        weightSpecs: manifest.model.weightSpecs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
      };
    },
  };
}
