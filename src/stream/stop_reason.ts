/**
 * Why a stream ended: `take` and `earlyStop` mark the last event they pass
 * under a symbol key, so stages further down (the dashboard) can say why the
 * run stopped. Symbol keys never reach JSON.
 *
 * @module
 */

/** The symbol under which the last event of a stopped stream says why. Internal. */
export const STOP_REASON: unique symbol = Symbol.for("fitstream.stopReason");

/** A copy of `event` marked as the last one, for `reason`. Internal. */
export function withStopReason<E>(event: E, reason: string): E {
  return { ...event, [STOP_REASON]: reason } as E;
}

/** The stop reason an event carries, if any. Internal. */
export function stopReasonOf(event: unknown): string | undefined {
  return (event as { [STOP_REASON]?: string } | null)?.[STOP_REASON];
}
