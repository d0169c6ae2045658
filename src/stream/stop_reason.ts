/**
 * Why a stream ended: `take` and `earlyStop` note it on the last event they
 * pass (beside the event, never in it: see `event_meta.ts`), so stages further
 * down (the dashboard) can say why the run stopped.
 *
 * @module
 */
import { annotate, notesOf } from "./event_meta.ts";

/** Notes `event` as the last one, for `reason`, and returns it unchanged. Internal. */
export function withStopReason<E>(event: E, reason: string): E {
  annotate(event, { stopReason: reason });
  return event;
}

/** The stop reason noted on an event, if any. Internal. */
export function stopReasonOf(event: unknown): string | undefined {
  return notesOf(event)?.stopReason;
}
