/**
 * Checkpoints on disk: a model's topology and weights, the optimizer's state,
 * the step and the shuffle state, written atomically (into a hidden temporary
 * folder, then renamed into place) through `node:fs`, on Deno and Bun alike.
 *
 * Layout of one checkpoint folder (`<dir>/step-000012/` or `<dir>/best/`):
 * `checkpoint.json` (format, run identity, step, shuffle state, topology,
 * weight specs, a SHA-256 of each weights file) and `model.weights.bin` and
 * `optimizer.weights.bin`. Step folders are ordered by their number, not by
 * name, so `step-1000000` comes after `step-999999`. Reading checks the
 * manifest, the file sizes and the checksums, and every error names the
 * folder: a damaged checkpoint is refused, never loaded.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isLayersModel, type ModelLike } from "../engine/model.ts";
import type { IOHandler, Tensor } from "../tf_types.ts";

const FORMAT = "fitstream-checkpoint/2";
/** Checkpoints written before run identities and checksums; still read. */
const FORMAT_1 = "fitstream-checkpoint/1";

/** A tensor with the name it is saved under. */
export interface NamedTensor {
  /** The name it is saved under. */
  name: string;
  /** The values. */
  tensor: Tensor;
}

interface Manifest {
  format: string;
  /** The run that wrote it (format 2). */
  run_id?: string;
  step: number;
  rng_state: number;
  /** SHA-256 (hex) of each weights file (format 2). */
  sha256?: { model: string; optimizer: string };
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
  /** The identity of the run that wrote it (absent in checkpoints of format 1). */
  runId?: string;
}

function joinBuffers(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/** A step folder's name: `step-000012`. */
export function stepFolder(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

/** The step a `step-*` folder name holds, or `undefined` for other names. */
function stepOfFolder(name: string): number | undefined {
  const match = /^step-(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** The newest complete `step-*` folder under `dir`, or `dir` itself if it is a checkpoint. */
export function latestCheckpoint(dir: string): string | undefined {
  if (existsSync(join(dir, "checkpoint.json"))) return dir;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return undefined;
  const steps = stepFolders(dir).filter((n) => existsSync(join(dir, n, "checkpoint.json")));
  return steps.length ? join(dir, steps[steps.length - 1]) : undefined;
}

/** The `step-*` folders under `dir`, oldest (lowest step) first. Internal. */
export function stepFolders(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => stepOfFolder(n) !== undefined)
    .sort((a, b) => stepOfFolder(a)! - stepOfFolder(b)!);
}

/** The run identity and step recorded in a checkpoint folder, without checking its files. Internal. */
export function checkpointIdentity(folder: string): { runId?: string; step?: number } {
  try {
    const manifest = JSON.parse(readFileSync(join(folder, "checkpoint.json"), "utf8")) as Partial<Manifest>;
    return { runId: manifest.run_id, step: manifest.step };
  } catch {
    return {};
  }
}

/** Removes what interrupted saves left beside `parent`'s checkpoints (`.tmp-*`, `.old-*`). */
async function removeOrphans(parent: string): Promise<void> {
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) {
    if (/^\.(tmp|old)-\d+-[a-z0-9]+$/.test(name)) await rm(join(parent, name), { recursive: true, force: true });
  }
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Writes a checkpoint of `model` and `optimizer` to `target` atomically: the
 * files go into a hidden sibling folder that is renamed to `target` when
 * complete, so a crash leaves either the previous checkpoint or the new one.
 */
export async function saveCheckpoint(
  target: string,
  parts: {
    model: ModelLike;
    variables: tf.Variable[];
    optimizer: tf.Optimizer;
    step: number;
    rngState: number;
    runId: string;
  },
): Promise<void> {
  const { model, variables, optimizer, step, rngState, runId } = parts;
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
  const optimizerData = joinBuffers(encodedOptimizer.data);
  const manifest: Manifest = {
    format: FORMAT,
    run_id: runId,
    step,
    rng_state: rngState,
    sha256: { model: sha256(modelData), optimizer: sha256(optimizerData) },
    model: { topology, weightSpecs: modelSpecs },
    optimizer: { className: optimizer.getClassName(), weightSpecs: encodedOptimizer.specs },
  };
  const parent = join(target, "..");
  await removeOrphans(parent); // a kill during an earlier save left them
  const temp = join(parent, `.tmp-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  await mkdir(temp, { recursive: true });
  try {
    await writeFile(join(temp, "model.weights.bin"), modelData);
    await writeFile(join(temp, "optimizer.weights.bin"), optimizerData);
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

/** A checkpoint read from disk and checked, before its tensors are made. Internal. */
export interface CheckpointFiles {
  /** The checkpoint folder read. */
  path: string;
  manifest: Manifest;
  modelData: Uint8Array;
  optimizerData: Uint8Array;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** The bytes `specs` describe, or `undefined` if a spec is not one we can size. */
function specBytes(specs: tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const size = BYTES_PER_ELEMENT[spec.dtype];
    if (size === undefined || spec.quantization || !Array.isArray(spec.shape)) return undefined;
    total += size * spec.shape.reduce((a, b) => a * b, 1);
  }
  return total;
}

function checkManifest(where: string, folder: string, manifest: unknown): Manifest {
  const bad = (what: string) => new Error(`${where}: "${folder}" is not a usable checkpoint: ${what}`);
  if (typeof manifest !== "object" || manifest === null) throw bad("checkpoint.json is not an object");
  const m = manifest as Manifest;
  if (m.format !== FORMAT && m.format !== FORMAT_1) throw bad(`unknown format ${JSON.stringify(m.format)}`);
  if (!Number.isSafeInteger(m.step) || m.step < 0) {
    throw bad(`step must be an integer >= 0, got ${JSON.stringify(m.step)}`);
  }
  if (!Number.isInteger(m.rng_state) || m.rng_state < 0 || m.rng_state >= 2 ** 32) {
    throw bad(`rng_state must be an integer in [0, 2^32), got ${JSON.stringify(m.rng_state)}`);
  }
  if (!Array.isArray(m.model?.weightSpecs) || !Array.isArray(m.optimizer?.weightSpecs)) {
    throw bad("weight specs missing");
  }
  if (m.format === FORMAT && (typeof m.run_id !== "string" || typeof m.sha256?.model !== "string")) {
    throw bad("run_id or sha256 missing");
  }
  return m;
}

/**
 * Reads and checks the checkpoint at `path` (a checkpoint folder, or the
 * newest under a folder of `step-*` checkpoints): manifest fields, file sizes
 * against the weight specs, and the checksums. Every error starts with
 * `where` and names the folder. Internal.
 */
export function readCheckpointFiles(where: string, path: string): CheckpointFiles {
  if (existsSync(path) && !statSync(path).isDirectory()) {
    throw new Error(`${where}: "${path}" is a file: name a checkpoint folder or a folder of step-* checkpoints`);
  }
  const folder = latestCheckpoint(path);
  if (!folder) throw new Error(`${where}: no checkpoint found in "${path}"`);
  const read = (name: string): Uint8Array => {
    try {
      return new Uint8Array(readFileSync(join(folder, name)));
    } catch (error) {
      throw new Error(`${where}: cannot read "${join(folder, name)}": ${(error as Error).message}`, { cause: error });
    }
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(read("checkpoint.json")));
  } catch (error) {
    if ((error as Error).message.startsWith(where)) throw error;
    throw new Error(`${where}: "${folder}" is not a usable checkpoint: checkpoint.json is not JSON`, { cause: error });
  }
  const manifest = checkManifest(where, folder, parsed);
  const modelData = read("model.weights.bin");
  const optimizerData = read("optimizer.weights.bin");
  const files: [string, Uint8Array, tf.io.WeightsManifestEntry[], string | undefined][] = [
    ["model.weights.bin", modelData, manifest.model.weightSpecs, manifest.sha256?.model],
    ["optimizer.weights.bin", optimizerData, manifest.optimizer.weightSpecs, manifest.sha256?.optimizer],
  ];
  for (const [name, data, specs, checksum] of files) {
    const expected = specBytes(specs);
    if (expected !== undefined && expected !== data.byteLength) {
      throw new Error(
        `${where}: "${join(folder, name)}" holds ${data.byteLength} bytes, its manifest describes ${expected}: ` +
          `the file is truncated or damaged`,
      );
    }
    if (checksum !== undefined && sha256(data) !== checksum) {
      throw new Error(
        `${where}: "${join(folder, name)}" does not match its checksum: the checkpoint is damaged ` +
          `(resume from an older checkpoint folder, or delete this one)`,
      );
    }
  }
  return { path: folder, manifest, modelData, optimizerData };
}

function decodeInOrder(data: Uint8Array, specs: tf.io.WeightsManifestEntry[]): NamedTensor[] {
  const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  const map = tf.io.decodeWeights(buffer, specs);
  return specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
}

/** The tensors of checked checkpoint files; the caller owns them. Internal. */
export function decodeCheckpoint(files: CheckpointFiles): LoadedCheckpoint {
  const { manifest } = files;
  return {
    path: files.path,
    step: manifest.step,
    rngState: manifest.rng_state,
    topology: manifest.model.topology,
    optimizerClass: manifest.optimizer.className,
    runId: manifest.run_id,
    modelWeights: decodeInOrder(files.modelData, manifest.model.weightSpecs),
    optimizerWeights: decodeInOrder(files.optimizerData, manifest.optimizer.weightSpecs),
  };
}

/**
 * Reads the checkpoint at `path` (a checkpoint folder, or a folder of
 * `step-*` checkpoints: the newest): its step, shuffle state, model weights
 * and optimizer state. The caller owns the tensors it returns. A damaged
 * checkpoint (wrong size, checksum mismatch, bad manifest) is refused with an
 * error that names the folder.
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
export function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  return Promise.resolve().then(() => decodeCheckpoint(readCheckpointFiles("loadCheckpoint", path)));
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
    load(): Promise<tf.io.ModelArtifacts> {
      return Promise.resolve().then(() => {
        const files = readCheckpointFiles("checkpointModel", path);
        if (files.manifest.model.topology === null) {
          throw new Error(`checkpointModel: "${files.path}" holds a function model's variables, not a layers model`);
        }
        const data = files.modelData;
        return {
          modelTopology: files.manifest.model.topology as tf.io.ModelArtifacts["modelTopology"],
          weightSpecs: files.manifest.model.weightSpecs,
          weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
        };
      });
    },
  };
}
