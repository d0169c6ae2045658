/**
 * Checkpoints on disk: a model's topology and weights, the optimizer's state,
 * the step and the shuffle state, written atomically (into a hidden temporary
 * folder, then renamed into place) through `node:fs`, on Deno and Bun alike.
 *
 * Layout of one checkpoint folder (`<dir>/step-000012/` or `<dir>/best/`):
 * `checkpoint.json` (format, run identity, step, shuffle state, topology,
 * weight specs, a SHA-256 of each weights file and one of the manifest
 * itself: see `manifest.ts`) and `model.weights.bin` and
 * `optimizer.weights.bin`. Step folders are ordered by their number, not by
 * name, so `step-1000000` comes after `step-999999`. Reading checks the
 * manifest, the file sizes and the checksums, and every error names the
 * folder: a damaged checkpoint is refused, never loaded.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as fs from "node:fs/promises";
import { basename, join } from "node:path";
import { isLayersModel, type ModelLike } from "../engine/model.ts";
import type { IOHandler, Tensor } from "../tf_types.ts";
import { checkManifest, FORMAT, type Manifest, sealManifest, sha256, stepOfFolder } from "./manifest.ts";
import { ownBuffer, specBytes, weightBytes } from "./weight_bytes.ts";

/** A tensor with the name it is saved under. */
export interface NamedTensor {
  /** The name it is saved under. */
  name: string;
  /** The values. */
  tensor: Tensor;
}

/**
 * The file operations a save performs, in one object so a test can make one
 * fail as a full disk would, without filling a disk. Internal.
 */
export const checkpointDisk: {
  mkdir: typeof fs.mkdir;
  writeFile: typeof fs.writeFile;
  rename: typeof fs.rename;
  rm: typeof fs.rm;
} = { mkdir: fs.mkdir, writeFile: fs.writeFile, rename: fs.rename, rm: fs.rm };

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
  /**
   * Where the run stood: what `step` counts (`"epoch"` or `"step"`), epochs
   * completed, micro-batches read of the next epoch, optimizer steps taken
   * (absent in checkpoints written before step-level training).
   */
  position?: { unit: "epoch" | "step"; epochs: number; batch: number; steps: number };
  /** State that stages kept (`emaWeights`'s average: `ema/0`, `ema/1`, …); empty when none. */
  partWeights: NamedTensor[];
}

/** A step folder's name: `step-000012`. */
export function stepFolder(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

/**
 * The newest `step-*` folder under `dir`, or `dir` itself if it is a
 * checkpoint. The newest is returned even without its `checkpoint.json`, to
 * be refused by name: saves rename complete folders into place, so such a
 * folder is damage, not an interrupted save to skip.
 */
export function latestCheckpoint(dir: string): string | undefined {
  if (existsSync(join(dir, "checkpoint.json"))) return dir;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return undefined;
  const steps = stepFolders(dir);
  return steps.length ? join(dir, steps[steps.length - 1]) : undefined;
}

/** The `step-*` folders under `dir`, oldest (lowest step) first. Internal. */
export function stepFolders(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => stepOfFolder(n) !== undefined)
    .sort((a, b) => stepOfFolder(a)! - stepOfFolder(b)!);
}

/**
 * The run identity and step recorded in a checkpoint folder, without
 * checking its files; `undefined` when its `checkpoint.json` cannot be read
 * or parsed. Internal.
 */
export function checkpointIdentity(folder: string): { runId?: string; step?: number } | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(folder, "checkpoint.json"), "utf8")) as Partial<Manifest>;
    return { runId: manifest.run_id, step: manifest.step };
  } catch {
    return undefined;
  }
}

/** A hidden sibling name for a folder being written or removed: `.tmp-…` or `.old-…`. */
function hiddenName(kind: "tmp" | "old"): string {
  return `.${kind}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

/**
 * Removes what interrupted saves left in `dir` (`.tmp-*`, `.old-*`). Only
 * for a caller that holds the folder's claim (`lock.ts`): then no other run
 * is saving there, and every such folder is a dead save's. Internal.
 */
export async function removeOrphans(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (/^\.(tmp|old)-\d+-[a-z0-9]+$/.test(name)) await fs.rm(join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Removes checkpoint folder `folder` so that no half-removed checkpoint can
 * be seen: it is renamed aside first (a kill mid-removal leaves an `.old-*`
 * orphan, never a `step-*` folder without its manifest). Internal.
 */
export async function removeCheckpoint(folder: string): Promise<void> {
  const aside = join(folder, "..", hiddenName("old"));
  try {
    await checkpointDisk.rename(folder, aside);
    await checkpointDisk.rm(aside, { recursive: true, force: true });
  } catch (error) {
    throw writeError(folder, "removing the old checkpoint", error);
  }
}

/** A write error that names the checkpoint folder and keeps the system's code (`ENOSPC`, `EACCES`, …). */
function writeError(target: string, doing: string, error: unknown): Error {
  const cause = error as { message?: string; code?: string };
  const wrapped = new Error(
    `checkpoint: cannot save "${target}" (${doing}): ${cause.message ?? String(error)} ` +
      `(free some space or fix the folder's permissions; the checkpoints saved before are intact)`,
    { cause: error },
  );
  return Object.assign(wrapped, cause.code === undefined ? {} : { code: cause.code });
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
    position?: Manifest["position"];
    /** Stages' state, by part name: saved as `<name>/<index>` in `parts.weights.bin`. */
    extra?: [string, tf.Tensor[]][];
  },
): Promise<void> {
  const { model, variables, optimizer, step, rngState, runId, position, extra = [] } = parts;
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
    modelData = weightBytes(artifacts!.weightData);
  } else {
    const encoded = await tf.io.encodeWeights(variables.map((v, i) => ({ name: `variable_${i}`, tensor: v })));
    modelSpecs = encoded.specs;
    modelData = weightBytes(encoded.data);
  }
  const optimizerWeights = await optimizer.getWeights();
  const encodedOptimizer = await tf.io.encodeWeights(optimizerWeights);
  tf.dispose(optimizerWeights.filter((w) => w.name === "iter").map((w) => w.tensor));
  const optimizerData = weightBytes(encodedOptimizer.data);
  const named = extra.flatMap(([part, tensors]) => tensors.map((tensor, i) => ({ name: `${part}/${i}`, tensor })));
  const encodedParts = named.length > 0 ? await tf.io.encodeWeights(named) : undefined;
  const partsData = encodedParts && weightBytes(encodedParts.data);
  const manifest = sealManifest({
    format: FORMAT,
    run_id: runId,
    step,
    rng_state: rngState,
    sha256: { model: sha256(modelData), optimizer: sha256(optimizerData) },
    model: { topology, weightSpecs: modelSpecs },
    optimizer: { className: optimizer.getClassName(), weightSpecs: encodedOptimizer.specs },
    position,
    parts: encodedParts && { weightSpecs: encodedParts.specs, sha256: sha256(partsData!) },
  });
  await writeAtomically(target, [
    ["model.weights.bin", modelData],
    ["optimizer.weights.bin", optimizerData],
    ...(partsData ? [["parts.weights.bin", partsData] as [string, Uint8Array]] : []),
    ["checkpoint.json", JSON.stringify(manifest)],
  ]);
}

/**
 * Writes `files` into a hidden sibling of `target` and renames it into
 * place (replacing an older `target`, as `best/` is). This save's own
 * temporary folder is removed if a step fails; every error names `target`.
 */
async function writeAtomically(target: string, files: [string, Uint8Array | string][]): Promise<void> {
  const disk = checkpointDisk;
  const parent = join(target, "..");
  const temp = join(parent, hiddenName("tmp"));
  let doing = `creating "${temp}"`;
  try {
    await disk.mkdir(temp, { recursive: true });
    for (const [name, data] of files) {
      doing = `writing "${join(temp, name)}"`;
      await disk.writeFile(join(temp, name), data);
    }
    doing = `renaming "${temp}" into place`;
    if (existsSync(target)) {
      const old = join(parent, hiddenName("old"));
      await disk.rename(target, old);
      try {
        await disk.rename(temp, target);
      } catch (error) {
        await disk.rename(old, target).catch(() => {}); // keep the previous one where it was
        throw error;
      }
      // Saved already: a failure here leaves an `.old-*` orphan for the next claim to remove, not a failed save.
      await disk.rm(old, { recursive: true, force: true }).catch(() => {});
    } else {
      await disk.rename(temp, target);
    }
  } catch (error) {
    await disk.rm(temp, { recursive: true, force: true }).catch(() => {});
    throw writeError(target, doing, error);
  }
}

/** A checkpoint read from disk and checked, before its tensors are made. Internal. */
export interface CheckpointFiles {
  /** The checkpoint folder read. */
  path: string;
  manifest: Manifest;
  modelData: Uint8Array;
  optimizerData: Uint8Array;
  /** `parts.weights.bin`, when the manifest lists parts. */
  partsData?: Uint8Array;
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
  if (!existsSync(join(folder, "checkpoint.json"))) {
    throw new Error(
      `${where}: "${folder}" is incomplete: it has no checkpoint.json. Saves rename only complete folders into ` +
        `place, so it was damaged or edited: move it out of "${join(folder, "..")}" (or delete it) to resume ` +
        `from the checkpoint before it`,
    );
  }
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
  const manifest = checkManifest(where, folder, basename(folder), parsed);
  const modelData = read("model.weights.bin");
  const optimizerData = read("optimizer.weights.bin");
  const partsData = manifest.parts ? read("parts.weights.bin") : undefined;
  const files: [string, Uint8Array, tf.io.WeightsManifestEntry[], string | undefined][] = [
    ["model.weights.bin", modelData, manifest.model.weightSpecs, manifest.sha256?.model],
    ["optimizer.weights.bin", optimizerData, manifest.optimizer.weightSpecs, manifest.sha256?.optimizer],
    ...(partsData
      ? [["parts.weights.bin", partsData, manifest.parts!.weightSpecs, manifest.parts!.sha256] as typeof files[0]]
      : []),
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
  return { path: folder, manifest, modelData, optimizerData, partsData };
}

function decodeInOrder(data: Uint8Array, specs: tf.io.WeightsManifestEntry[]): NamedTensor[] {
  const map = tf.io.decodeWeights(ownBuffer(data), specs);
  return specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
}

/**
 * The stages' parts of checked checkpoint files, still encoded, by part name
 * (their stages decode them when they claim them). Internal.
 */
export function savedParts(
  files: CheckpointFiles,
): Map<string, { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array }> {
  const out = new Map<string, { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array }>();
  const specs = files.manifest.parts?.weightSpecs ?? [];
  const data = files.partsData;
  if (!data) return out;
  let offset = 0;
  for (const spec of specs) {
    const size = specBytes([spec]) ?? 0;
    const part = spec.name.slice(0, spec.name.lastIndexOf("/"));
    const entry = out.get(part) ?? { specs: [], data: new Uint8Array(0) };
    const joined = new Uint8Array(entry.data.byteLength + size);
    joined.set(entry.data);
    joined.set(data.subarray(offset, offset + size), entry.data.byteLength);
    out.set(part, { specs: [...entry.specs, spec], data: joined });
    offset += size;
  }
  return out;
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
    position: manifest.position,
    modelWeights: decodeInOrder(files.modelData, manifest.model.weightSpecs),
    optimizerWeights: decodeInOrder(files.optimizerData, manifest.optimizer.weightSpecs),
    partWeights: files.partsData ? decodeInOrder(files.partsData, manifest.parts!.weightSpecs) : [],
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
        return {
          modelTopology: files.manifest.model.topology as tf.io.ModelArtifacts["modelTopology"],
          weightSpecs: files.manifest.model.weightSpecs,
          weightData: ownBuffer(files.modelData),
        };
      });
    },
  };
}
