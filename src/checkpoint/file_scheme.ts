/**
 * tfjs's `file://` URLs on Deno and Bun: `model.save("file://dir")` writes
 * `dir/model.json` and `dir/weights.bin`, and
 * `tf.loadLayersModel("file://dir/model.json")` reads them back. Only
 * tfjs-node registers handlers for `file://`, and it does not run on Deno or
 * Bun, so plain tfjs answers "Cannot find any save handlers".
 *
 * The files are the ones tfjs-node writes, so models move between the two
 * both ways: `model.json` holds `modelTopology`, `format`, `generatedBy`,
 * `convertedBy` (and `trainingConfig`, `signature`, `userDefinedMetadata`
 * when the model has them) and a `weightsManifest` of one group,
 * `{ paths: ["weights.bin"], weights: <specs> }`; `weights.bin` holds the
 * weights' bytes in the specs' order. Reading follows the manifest: every
 * path of every group, relative to the folder of `model.json`, joined in
 * order, so the converter's sharded output and `./weights.bin` load too.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ownBuffer, specBytes, weightBytes } from "./weight_bytes.ts";

const SCHEME = "file://";
const MODEL_JSON = "model.json";
const WEIGHTS_BIN = "weights.bin";

/** The path a `file://` URL names, resolved against the working directory as tfjs-node does. */
function pathOf(url: string): string {
  return resolve(url.slice(SCHEME.length));
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Writes `data` to `path` through a temporary sibling renamed into place: a killed save leaves the old file whole. */
async function writeWhole(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** The optional fields tfjs-node copies between the artifacts and model.json when present. */
const OPTIONAL = ["trainingConfig", "signature", "userDefinedMetadata"] as const;

function saveHandler(url: string): tf.io.IOHandler {
  const dir = pathOf(url);
  const where = `saving to "${url}"`;
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error(`${where}: a binary (GraphDef) topology cannot be written as model.json`);
      }
      const existing = await stat(dir).catch(() => undefined);
      if (existing && !existing.isDirectory()) {
        throw new Error(`${where}: "${dir}" is a file: name a folder (it is created if missing)`);
      }
      const json: Record<string, unknown> = {
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
      };
      for (const key of OPTIONAL) if (artifacts[key] != null) json[key] = artifacts[key];
      try {
        await mkdir(dir, { recursive: true });
        // The weights first: model.json names them, so a reader that finds the new model.json finds its weights.
        await writeWhole(join(dir, WEIGHTS_BIN), weightBytes(artifacts.weightData));
        await writeWhole(join(dir, MODEL_JSON), JSON.stringify(json));
      } catch (error) {
        throw new Error(`${where}: cannot write "${dir}": ${reason(error)}`, { cause: error });
      }
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

function isManifest(value: unknown): value is tf.io.WeightsManifestConfig {
  return Array.isArray(value) &&
    value.every((group) =>
      typeof group === "object" && group !== null && Array.isArray(group.paths) &&
      group.paths.every((p: unknown) => typeof p === "string") && Array.isArray(group.weights)
    );
}

function loadHandler(url: string): tf.io.IOHandler {
  const path = pathOf(url);
  const where = `loading "${url}"`;
  const read = async (file: string, what: string): Promise<Uint8Array> => {
    try {
      return new Uint8Array(await readFile(file));
    } catch (error) {
      throw new Error(`${where}: cannot read ${what} "${file}": ${reason(error)}`, { cause: error });
    }
  };
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      if ((await stat(path).catch(() => undefined))?.isDirectory()) {
        throw new Error(`${where}: "${path}" is a folder: name the ${MODEL_JSON} in it`);
      }
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(new TextDecoder().decode(await read(path, "the model file")));
      } catch (error) {
        if (reason(error).startsWith(where)) throw error;
        throw new Error(`${where}: "${path}" is not JSON: ${reason(error)}`, { cause: error });
      }
      if (typeof json !== "object" || json === null || Array.isArray(json)) {
        throw new Error(`${where}: "${path}" must hold a JSON object, got ${Array.isArray(json) ? "an array" : json}`);
      }
      const artifacts: tf.io.ModelArtifacts = {
        modelTopology: json.modelTopology as tf.io.ModelArtifacts["modelTopology"],
        format: json.format as string | undefined,
        generatedBy: json.generatedBy as string | undefined,
        convertedBy: json.convertedBy as string | null | undefined,
      };
      for (const key of OPTIONAL) if (json[key] != null) Object.assign(artifacts, { [key]: json[key] });
      const manifest = json.weightsManifest;
      if (manifest === undefined) return artifacts;
      if (!isManifest(manifest)) {
        throw new Error(`${where}: "${path}" has a weightsManifest that is not a list of { paths, weights } groups`);
      }
      const files = manifest.flatMap((group) => group.paths.map((p) => join(dirname(path), p)));
      const parts: Uint8Array[] = [];
      for (const file of files) parts.push(await read(file, "the weight file"));
      const data = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
      parts.reduce((offset, part) => (data.set(part, offset), offset + part.byteLength), 0);
      const specs = manifest.flatMap((group) => group.weights);
      const expected = specBytes(specs);
      if (expected !== undefined && expected !== data.byteLength) {
        throw new Error(
          `${where}: ${files.map((f) => `"${f}"`).join(", ")} hold ${data.byteLength} bytes, the weightsManifest ` +
            `of "${path}" describes ${expected}: a weight file is truncated or belongs to another model`,
        );
      }
      return { ...artifacts, weightSpecs: specs, weightData: ownBuffer(data) };
    },
  };
}

type Router = Parameters<typeof tf.io.registerSaveRouter>[0];

// A router answers null for a URL that is not its own: tfjs's registry keeps only handlers !== null, and its
// own routers do the same, though the IORouter type leaves null out.
const saveRouter =
  ((url: string | string[]) => typeof url === "string" && url.startsWith(SCHEME) ? saveHandler(url) : null) as Router;
const loadRouter =
  ((url: string | string[]) => typeof url === "string" && url.startsWith(SCHEME) ? loadHandler(url) : null) as Router;

let registered = false;

/**
 * Registers the `file://` save and load routers with tfjs, once. Where a
 * `file://` handler is already registered (the program's own), it is left
 * to answer alone: with two, tfjs refuses to choose. Internal.
 */
export function registerFileScheme(): void {
  if (registered) return;
  registered = true;
  if (tf.io.getSaveHandlers(`${SCHEME}${MODEL_JSON}`).length === 0) tf.io.registerSaveRouter(saveRouter);
  if (tf.io.getLoadHandlers(`${SCHEME}${MODEL_JSON}`).length === 0) tf.io.registerLoadRouter(loadRouter);
}
