/**
 * State that stages keep for a run besides the model and the optimizer —
 * `emaWeights`'s average — registered by name so that `checkpoint` saves it
 * beside the run and a resumed run hands it back. One registry per run,
 * shared by all its events. Only types come from tfjs here, so the stream
 * core loads without it.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** A stage's state, as a checkpoint saves it. Internal. */
export interface RunPart {
  /** The `step` of the last event the state has taken in (a checkpoint refuses to save it for another step). */
  readonly step: number;
  /** The state's tensors, in a fixed order; they stay the part's own. */
  tensors(): tf.Tensor[];
}

/** A part as read back from a checkpoint, still encoded (decoded by the stage that claims it). Internal. */
export interface SavedPart {
  specs: tf.io.WeightsManifestEntry[];
  data: Uint8Array;
}

/** The parts of one run. Internal. */
export class RunParts {
  #parts = new Map<string, RunPart>();
  #restored = new Map<string, SavedPart>();

  /** Registers `part` under `name`; a second stage with the same name is refused, naming `where`. */
  register(where: string, name: string, part: RunPart): void {
    if (this.#parts.has(name)) {
      throw new TypeError(
        `${where}: the run already has a stage keeping "${name}": give each such stage its own name`,
      );
    }
    this.#parts.set(name, part);
  }

  /** Removes the part registered under `name` (its stage has ended). */
  unregister(name: string, part: RunPart): void {
    if (this.#parts.get(name) === part) this.#parts.delete(name);
  }

  /** The registered parts, by name. */
  entries(): [string, RunPart][] {
    return [...this.#parts];
  }

  /** Keeps the parts a checkpoint held, for their stages to claim. */
  restore(saved: Map<string, SavedPart>): void {
    this.#restored = saved;
  }

  /** The saved state of `name` from the checkpoint the run resumed from, once; `undefined` when none. */
  claim(name: string): SavedPart | undefined {
    const saved = this.#restored.get(name);
    this.#restored.delete(name);
    return saved;
  }
}
