/**
 * A checkpoint's `checkpoint.json`: its formats, the checks of its fields,
 * and the SHA-256 that seals it.
 *
 * Format 3 stores `manifest_sha256`, a SHA-256 of the manifest's canonical
 * content (every other field, keys sorted, no whitespace), beside the
 * checksums of the weight files: an edited step or shuffle state is refused
 * as a flipped weight byte is, while re-indenting the file is harmless.
 * Formats 1 and 2 (written before it) are still read: their fields are
 * checked for type and range, and a `step-*` folder's step must match its
 * name, but an edit that keeps them plausible cannot be detected there.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";

/** The format written now. Internal. */
export const FORMAT = "fitstream-checkpoint/3";
/** Run identity and weight checksums, no checksum of the manifest itself; still read. */
const FORMAT_2 = "fitstream-checkpoint/2";
/** Neither run identity nor checksums; still read. */
const FORMAT_1 = "fitstream-checkpoint/1";

/** The content of `checkpoint.json`. Internal. */
export interface Manifest {
  format: string;
  /** The run that wrote it (formats 2 and 3). */
  run_id?: string;
  step: number;
  rng_state: number;
  /** SHA-256 (hex) of each weights file (formats 2 and 3). */
  sha256?: { model: string; optimizer: string };
  /** SHA-256 (hex) of the canonical content of every other field (format 3). */
  manifest_sha256?: string;
  model: { topology: unknown | null; weightSpecs: tf.io.WeightsManifestEntry[] };
  optimizer: { className: string; weightSpecs: tf.io.WeightsManifestEntry[] };
  /**
   * Where the run stood (written since step-level training): what `step`
   * counts, epochs completed, micro-batches read of the next one, optimizer
   * steps. Without it, `step` counts epochs and the run stood at an epoch's end.
   */
  position?: { unit: "epoch" | "step"; epochs: number; batch: number; steps: number };
  /**
   * State that stages kept for the run (`emaWeights`), in `parts.weights.bin`:
   * each weight named `<part>/<index>`, and the file's SHA-256.
   */
  parts?: { weightSpecs: tf.io.WeightsManifestEntry[]; sha256: string };
}

/** SHA-256 of `data`, in hex. Internal. */
export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * `value` as JSON with every object's keys sorted and no whitespace: the same
 * text for the same content however the file was written or re-indented.
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.keys(value).sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** The SHA-256 a manifest's `manifest_sha256` must hold: of its canonical content without that field. Internal. */
export function manifestChecksum(manifest: Manifest): string {
  const { manifest_sha256: _, ...content } = manifest;
  return sha256(canonicalJson(content));
}

/** `manifest` with its `manifest_sha256` set, ready to write. Internal. */
export function sealManifest(manifest: Manifest): Manifest {
  // Sealed as it will read back: a JSON round trip first, so the hash never sees what JSON drops or rewrites.
  const plain = JSON.parse(JSON.stringify({ ...manifest, manifest_sha256: undefined })) as Manifest;
  return { ...plain, manifest_sha256: manifestChecksum(plain) };
}

/** The step a `step-*` folder name holds, or `undefined` for other names. Internal. */
export function stepOfFolder(name: string): number | undefined {
  const match = /^step-(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Checks a parsed `checkpoint.json` read from `folder` (whose last path part
 * is `folderName`): known format, fields of the right type and range, the
 * seal of format 3, and a step that matches a `step-*` folder's name. Throws
 * an error starting with `where` that names the folder. Internal.
 */
export function checkManifest(where: string, folder: string, folderName: string, manifest: unknown): Manifest {
  const bad = (what: string) => new Error(`${where}: "${folder}" is not a usable checkpoint: ${what}`);
  if (typeof manifest !== "object" || manifest === null) throw bad("checkpoint.json is not an object");
  const m = manifest as Manifest;
  if (m.format !== FORMAT && m.format !== FORMAT_2 && m.format !== FORMAT_1) {
    throw bad(
      `unknown format ${JSON.stringify(m.format)} (this version reads ${FORMAT}, ${FORMAT_2} and ${FORMAT_1}; ` +
        `a newer fitstream may have written it)`,
    );
  }
  if (!Number.isSafeInteger(m.step) || m.step < 0) {
    throw bad(`step must be an integer >= 0, got ${JSON.stringify(m.step)}`);
  }
  if (!Number.isInteger(m.rng_state) || m.rng_state < 0 || m.rng_state >= 2 ** 32) {
    throw bad(`rng_state must be an integer in [0, 2^32), got ${JSON.stringify(m.rng_state)}`);
  }
  if (!Array.isArray(m.model?.weightSpecs) || !Array.isArray(m.optimizer?.weightSpecs)) {
    throw bad("weight specs missing");
  }
  if (m.format !== FORMAT_1 && (typeof m.run_id !== "string" || typeof m.sha256?.model !== "string")) {
    throw bad("run_id or sha256 missing");
  }
  if (m.format === FORMAT) {
    if (typeof m.manifest_sha256 !== "string") throw bad("manifest_sha256 missing");
    if (manifestChecksum(m) !== m.manifest_sha256) {
      throw new Error(
        `${where}: "${folder}/checkpoint.json" does not match its checksum: the checkpoint's metadata (step, ` +
          `shuffle state, run, weight specs) was edited or damaged (resume from an older checkpoint folder, or ` +
          `delete this one)`,
      );
    }
  }
  if (m.position !== undefined) {
    const p = m.position;
    const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    if (
      typeof p !== "object" || p === null || (p.unit !== "epoch" && p.unit !== "step") || !count(p.epochs) ||
      !count(p.batch) || !count(p.steps)
    ) {
      throw bad(
        `position must hold unit ("epoch" or "step") and counts epochs, batch, steps, got ${JSON.stringify(p)}`,
      );
    }
  }
  if (m.parts !== undefined && (!Array.isArray(m.parts?.weightSpecs) || typeof m.parts?.sha256 !== "string")) {
    throw bad("parts must hold weightSpecs and sha256");
  }
  const named = stepOfFolder(folderName);
  if (named !== undefined && named !== m.step) {
    throw bad(`its folder is named for step ${named} but checkpoint.json says step ${m.step} (edited or misplaced)`);
  }
  return m;
}
