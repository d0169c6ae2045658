/**
 * Splitting bytes into lines with a limit in bytes per line: the collector's
 * line limit and the run follower's guard. Counting decoded text instead
 * counted UTF-16 units, so a line of 2-byte characters passed at twice the
 * limit (issue 29, finding 12).
 *
 * @module
 */

/** A byte line splitter: feed chunks with `push`, end with `end`. Internal. */
export interface ByteLines {
  /** Splits `chunk` (which may be reused by the caller afterwards: what is kept of it is copied). */
  push(chunk: Uint8Array): void;
  /** The unterminated last line, if any, as a line. */
  end(): void;
  /** Bytes of the unfinished line held now. */
  pending(): number;
  /** Forgets the unfinished line (a reader that starts over). */
  drop(): void;
}

const NEWLINE = 0x0a;
const RETURN = 0x0d;

/**
 * Calls `onLine` with each complete line (without its newline, nor a `\r`
 * before it; the bytes are only valid during the call) and `onOverlong` for
 * each line longer than `maxBytes`, in the order they come. An overlong line
 * is never held whole: once its start passes the limit, its bytes are skipped
 * up to its newline, so memory stays within `maxBytes` whatever is fed.
 * Internal.
 */
export function byteLines(
  maxBytes: number,
  onLine: (line: Uint8Array) => void,
  onOverlong: () => void,
): ByteLines {
  let pieces: Uint8Array[] = [];
  let held = 0;
  let skipping = false; // inside a line already reported as overlong
  const take = (tail: Uint8Array) => {
    // the line so far plus `tail`, as one array
    if (pieces.length === 0) return tail;
    const whole = new Uint8Array(held + tail.length);
    let at = 0;
    for (const piece of pieces) {
      whole.set(piece, at);
      at += piece.length;
    }
    whole.set(tail, at);
    pieces = [];
    held = 0;
    return whole;
  };
  const emit = (line: Uint8Array) => {
    const end = line.length > 0 && line[line.length - 1] === RETURN ? line.length - 1 : line.length;
    if (end > maxBytes) onOverlong();
    else onLine(line.subarray(0, end));
  };
  return {
    push(chunk) {
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf(NEWLINE, start);
        if (newline < 0) break;
        if (skipping) {
          skipping = false;
        } else if (held + newline - start > maxBytes + 1) { // + 1: a "\r" before the newline is not counted
          pieces = [];
          held = 0;
          onOverlong();
        } else {
          emit(take(chunk.subarray(start, newline)));
        }
        start = newline + 1;
      }
      if (start === chunk.length || skipping) return;
      const rest = chunk.length - start;
      if (held + rest > maxBytes + 1) {
        pieces = [];
        held = 0;
        skipping = true;
        onOverlong();
        return;
      }
      pieces.push(chunk.slice(start));
      held += rest;
    },
    end() {
      if (!skipping && held > 0) emit(take(new Uint8Array(0)));
      pieces = [];
      held = 0;
      skipping = false;
    },
    pending: () => held,
    drop() {
      pieces = [];
      held = 0;
      skipping = false;
    },
  };
}
