/**
 * Where a run stands, and how it moves on: one pass at a time for
 * `epochStream`, one optimizer step at a time for `stepStream`, both over
 * the same passes (the same shuffle, the same micro-batches, the same
 * engines), so seven step events of a seven-batch epoch train what one epoch
 * event trains. It restores a checkpoint before the first event (weights,
 * optimizer state, shuffle state, the position inside an epoch) and says
 * what a checkpoint of each event must hold.
 *
 * @module
 */
import { permutation } from "../data/random.ts";
import { isPassAware } from "../data/dataset.ts";
import { restoreRun } from "../checkpoint/resume.ts";
import { savedParts } from "../checkpoint/store.ts";
import { EpochTraining, type OpenPass } from "../engine/trainer.ts";
import type { Trained } from "../engine/epoch_trainer.ts";
import { skipBatches } from "../engine/feed.ts";
import { RunParts } from "../stream/run_parts.ts";
import { noteUpcomingStep, type RunPosition, type TrainingState } from "../stream/training_state.ts";
import type { Plan } from "./epoch_options.ts";

/** One pass's or one step's training, with the epoch it belongs to. Internal. */
export interface Moved extends Trained {
  /** The epoch (1-based pass) trained. */
  epoch: number;
}

/** A run's position and training. Internal. */
export class RunCursor {
  #plan: Plan;
  #unit: RunPosition["unit"];
  #training: EpochTraining;
  #pass: OpenPass | undefined;
  /** Epochs completed. */
  #epochs = 0;
  /** Micro-batches read of epoch `#epochs + 1`. */
  #batch = 0;
  /** Optimizer steps taken since the run began (a resumed run goes on counting). */
  #steps = 0;
  /** The shuffle state at the start of epoch `#epochs + 1`. */
  #epochRng: number;
  /** Names this run in its checkpoints; a resumed run keeps the identity it had. */
  #runId: string = crypto.randomUUID();
  readonly parts: RunParts = new RunParts();

  constructor(plan: Plan, unit: RunPosition["unit"]) {
    this.#plan = plan;
    this.#unit = unit;
    this.#training = new EpochTraining(plan.run, unit === "step" ? "stepStream" : "epochStream");
    this.#epochRng = plan.random.state;
    const saved = plan.resumeFrom?.manifest;
    if (saved) {
      // Known when the stream is built, so a schedule built next starts where the run stands.
      this.#epochs = saved.position?.epochs ?? saved.step;
      this.#batch = saved.position?.batch ?? 0;
      this.#steps = saved.position?.steps ?? 0;
    }
    noteUpcomingStep(plan.run.optimizer, () => this.upcomingStep);
  }

  /** The `step` the next event will have. */
  get upcomingStep(): number {
    return this.#count + 1;
  }

  /** The `step` of the latest event: epochs or optimizer steps. */
  get #count(): number {
    return this.#unit === "step" ? this.#steps : this.#epochs;
  }

  /** Before the first event: restores the checkpoint named by `resumeFrom`, once. */
  async resume(): Promise<void> {
    const from = this.#plan.resumeFrom;
    if (from === undefined) return;
    this.#plan.resumeFrom = undefined;
    const { random, run: { model, optimizer } } = this.#plan;
    const restored = await restoreRun(from, { model, optimizer, variables: this.#training.variables });
    this.#runId = restored.runId ?? this.#runId;
    random.state = this.#epochRng = restored.rngState;
    // A checkpoint written before positions were recorded stood at an epoch's end, after as many optimizer
    // steps as the optimizer counted (tfjs saves its iteration count with its state).
    if (!from.manifest.position) this.#steps = restored.iterations;
    this.parts.restore(savedParts(from));
  }

  /** Trains the next whole epoch (`epochStream`). */
  async epoch(): Promise<Moved> {
    const pass = this.#pass = await this.#open();
    let trained: Trained;
    try {
      trained = await pass.trainer.train(pass.feed, Infinity);
    } finally {
      await this.close();
    }
    this.#steps += trained.steps;
    return { ...trained, epoch: ++this.#epochs };
  }

  /** Trains the next optimizer step (`stepStream`), opening the next epoch when the last one is over. */
  async step(): Promise<Moved> {
    for (let opened = 0;; opened++) {
      if (!this.#pass) {
        this.#pass = await this.#open();
        await skipBatches(this.#pass.feed, this.#batch); // a run resumed inside an epoch
      }
      const pass = this.#pass;
      const trained = await pass.trainer.train(pass.feed, 1);
      if (trained.steps === 0) {
        // Every micro-batch was read: a dataset says so only when asked for one more, and a resumed run may
        // have stopped after an epoch's last batch. A fresh epoch always has one (its opening checks).
        if (opened > 0) throw new RangeError(`stepStream: epoch ${this.#epochs + 1} has no batch to train`);
        await this.#endEpoch();
        continue;
      }
      this.#steps++;
      this.#batch = pass.feed.taken;
      const epoch = this.#epochs + 1;
      if (pass.feed.done) await this.#endEpoch();
      return { ...trained, epoch };
    }
  }

  async #endEpoch(): Promise<void> {
    await this.close();
    this.#epochs++;
    this.#batch = 0;
  }

  /** Opens epoch `#epochs + 1`: its shuffle, or its pass over the dataset. */
  async #open(): Promise<OpenPass> {
    const { random, shuffle, run } = this.#plan;
    this.#epochRng = random.state;
    const dataset = run.dataset;
    if (dataset) {
      if (isPassAware(dataset)) dataset.nextPass = this.#epochs; // a resumed run reads pass k + 1 next
      return await this.#training.openDatasetPass(this.#epochs + 1);
    }
    return this.#training.openPass(shuffle ? permutation(run.rows, random) : undefined);
  }

  /** Frees what an epoch in progress holds (a dataset's batch read and not trained). */
  async close(): Promise<void> {
    const pass = this.#pass;
    this.#pass = undefined;
    if (pass?.feed.kind === "tensors") await pass.feed.close();
  }

  /** What stages and checkpoints know of the run after the latest event. */
  state(): TrainingState {
    const { model, optimizer } = this.#plan.run;
    const inEpoch = this.#pass !== undefined;
    return {
      model,
      optimizer,
      variables: this.#training.variables,
      step: this.#count,
      rngState: inEpoch ? this.#epochRng : this.#plan.random.state,
      position: { unit: this.#unit, epochs: this.#epochs, batch: this.#batch, steps: this.#steps },
      parts: this.parts,
      runId: this.#runId,
    };
  }
}
