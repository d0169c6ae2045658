/**
 * `checkpoint({ dir, every, best, keep })`: save the run as it goes.
 *
 * @module
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { numericValue, requireInteger, requireKey, requireOptions } from "../internal/validate.ts";
import { probeWritableFolder } from "../sinks/file.ts";
import { claimFolder, type FolderClaim } from "../checkpoint/lock.ts";
import {
  checkpointIdentity,
  removeCheckpoint,
  removeOrphans,
  saveCheckpoint,
  stepFolder,
  stepFolders,
} from "../checkpoint/store.ts";
import { type TrainingState, trainingStateOf } from "../stream/training_state.ts";
import type { Tensor } from "../tf_types.ts";
import type { Stage } from "../stream/stage.ts";
import { stepStage } from "../stream/step_stage.ts";

/** Options of {@link checkpoint}. */
export interface CheckpointOptions<K extends string> {
  /** Folder for the checkpoints; created if missing. Must be writable. */
  dir: string;
  /** Save `step-NNNNNN` every this many events (integer ≥ 1, default 1). */
  every?: number;
  /** Also keep `best/`: the event with the best value of `key` so far. */
  best?: { key: K; mode?: "min" | "max" };
  /** How many `step-*` checkpoints to keep, newest first (integer ≥ 1, default 3). */
  keep?: number;
}

/**
 * Saves the model (topology and weights), the optimizer's state, the step and
 * the shuffle state after selected events, so a run can resume exactly where
 * it stopped (`epochStream({ resumeFrom: dir })`; behind `stepStream`, inside
 * an epoch too: `stepStream({ resumeFrom: dir })`), with the state of the
 * stages before it that keep some (`emaWeights`'s average). Each checkpoint is written
 * to a temporary folder and renamed into place, so a crash never leaves a
 * half-written one; what an interrupted save left is removed at the next.
 * The stage passes events on unchanged, after the save. It needs events
 * from `epochStream`.
 *
 * A folder holds one run: checkpoints of another run (or newer steps of this
 * one, left when it resumed from an older checkpoint) are refused at the
 * first event rather than mixed or rotated away — resume that run with
 * `epochStream({ resumeFrom: dir })`, or choose an empty folder. And one run
 * at a time saves there: at the first event the stage claims the folder
 * (`run.lock`, created exclusively, removed when the stream ends), so a
 * second run started into it at the same time — from another process or
 * this one — is refused with the folder and the holder named.
 *
 * @example Checkpoint every 5 epochs and keep the best by val_loss
 * ```ts ignore
 * pipe(
 *   epochStream({ data, model, optimizer, loss }),
 *   augment(validationLoss({ data: val, loss })),
 *   checkpoint({ dir: "runs/ckpt", every: 5, best: { key: "val_loss" } }),
 *   take(100),
 * );
 * ```
 */
export function checkpoint<const K extends string = never, E extends { [P in K]: number } = { [P in K]: number }>(
  options: CheckpointOptions<K>,
): Stage<E, E> {
  checkKeys("checkpoint", options, CHECKPOINT_KEYS);
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`checkpoint: options must be an object with dir, got ${describe(options)}`);
  }
  requireOptions("checkpoint", options);
  const { every = 1, keep = 3, best } = options;
  requireKey("checkpoint", "dir", options.dir);
  requireInteger("checkpoint", "every", every, 1);
  requireInteger("checkpoint", "keep", keep, 1);
  if (best !== undefined) {
    requireKey("checkpoint", "best.key", best?.key);
    if (best.mode !== undefined && best.mode !== "min" && best.mode !== "max") {
      throw new RangeError(`checkpoint: best.mode must be "min" or "max", got ${describe(best.mode)}`);
    }
  }
  const dir = resolve(options.dir);
  try {
    mkdirSync(dir, { recursive: true });
    probeWritableFolder(dir);
  } catch (error) {
    throw new Error(`checkpoint: cannot write checkpoints to "${dir}": ${(error as Error).message}`, { cause: error });
  }
  const sign = best?.mode === "max" ? -1 : 1;
  let bestValue = Infinity;
  let claim: FolderClaim | undefined;
  return stepStage<E, E>(async (event, index) => {
    const state = trainingStateOf("checkpoint", event);
    if (claim === undefined) {
      // Claimed before the checks: two runs starting at once would both find the folder empty.
      claim = await claimFolder("checkpoint", dir, state.runId);
      refuseOtherRuns(dir, state.runId, state.step);
      await removeOrphans(dir); // the claim makes every temporary folder here a dead save's
    }
    const saved = { ...state, extra: partsOf(state) };
    if (index % every === 0) {
      await saveCheckpoint(join(dir, stepFolder(state.step)), saved);
      const folders = stepFolders(dir);
      for (const old of folders.slice(0, Math.max(0, folders.length - keep))) {
        await removeCheckpoint(join(dir, old));
      }
    }
    if (best) {
      const value = numericValue("checkpoint", event, best.key);
      if (sign * value < bestValue) {
        bestValue = sign * value;
        await saveCheckpoint(join(dir, "best"), saved);
      }
    }
    return event;
  }, { onEnd: () => claim?.release() });
}

/**
 * The state stages keep for the run (`emaWeights`), each as of this event: a
 * stage placed after `checkpoint` has not taken the event in yet, and its
 * state would be saved a step behind the weights.
 */
function partsOf(state: TrainingState): [string, Tensor[]][] {
  return state.parts.entries().map(([name, part]) => {
    if (part.step !== state.step) {
      throw new Error(
        `checkpoint: the stage keeping "${name}" has taken in step ${part.step}, not this event's step ` +
          `${state.step}: place checkpoint(...) after it in the pipeline, so it saves its state with the weights`,
      );
    }
    return [name, part.tensors()];
  });
}

/** Throws unless every checkpoint in `dir` is complete and belongs to run `runId` at a step before `step`. */
function refuseOtherRuns(dir: string, runId: string, step: number): void {
  const names = [...stepFolders(dir), ...(existsSync(join(dir, "best")) ? ["best"] : [])];
  const read = names.map((name) => ({ name, identity: checkpointIdentity(join(dir, name)) }));
  const incomplete = read.filter((c) => c.identity === undefined).map((c) => c.name);
  if (incomplete.length > 0) {
    throw new Error(
      `checkpoint: "${dir}" holds ${incomplete.join(", ")} without a readable checkpoint.json: saves rename ` +
        `only complete folders into place, so they were damaged or edited; move them out of the folder (or ` +
        `delete them) before saving here`,
    );
  }
  const identities = read.map((c) => ({ name: c.name, ...c.identity }));
  const foreign = identities.filter((c) => c.runId !== runId).map((c) => c.name);
  if (foreign.length > 0) {
    throw new Error(
      `checkpoint: "${dir}" holds checkpoints of another run (${foreign.join(", ")}); saving here would mix ` +
        `the two runs and rotate the older one's away: resume it with epochStream({ resumeFrom: "${dir}" }), ` +
        `or give this run an empty folder`,
    );
  }
  const newer = identities.filter((c) => c.name !== "best" && (c.step ?? 0) >= step).map((c) => c.name);
  if (newer.length > 0) {
    throw new Error(
      `checkpoint: "${dir}" holds ${newer.join(", ")} of this run, not older than step ${step} (it resumed from an ` +
        `older checkpoint); move them away or delete them, or resume from the newest`,
    );
  }
}

/** The keys of {@link CheckpointOptions}, checked by the compiler both ways. */
const CHECKPOINT_KEYS: readonly string[] = keysOf<CheckpointOptions<string>>({
  dir: true,
  every: true,
  best: true,
  keep: true,
});
