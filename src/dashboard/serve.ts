/**
 * The HTTP seam: serve a fetch handler on Deno (`Deno.serve`) or Bun
 * (`Bun.serve`), and stop it. Everything else in the dashboard is
 * runtime-neutral (a Hono app over web-standard `Request`/`Response`).
 *
 * @module
 */

/** A listening server. Internal. */
export interface RunningServer {
  /** The port it listens on (useful with port 0). */
  port: number;
  /**
   * Stops listening, lets responses in flight finish for up to `graceMs`, then drops the connections
   * still open (a page that stopped reading would otherwise hold the server, and the process, forever).
   */
  close(graceMs: number): Promise<void>;
}

type Handler = (request: Request) => Response | Promise<Response>;

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen?: () => void; signal?: AbortSignal },
    handler: Handler,
  ): { addr: { port: number }; finished: Promise<void>; shutdown(): Promise<void> };
}
interface BunServe {
  serve(options: { hostname: string; port: number; fetch: Handler; idleTimeout?: number }): {
    port: number;
    stop(closeActive?: boolean): void | Promise<void>;
  };
}

/** Resolves after `ms` (the timer does not hold the process). */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    (timer as unknown as { unref?: () => void }).unref?.();
  });
}

/**
 * Largest piece of a body handed to Deno at once. A client that stops reading while Deno writes a
 * chunk of a few megabytes (one `c.json` text) held Deno's server open even after its signal was
 * aborted; pieces of this size let the abort close the connection.
 */
const MAX_PIECE = 64 * 1024;

/**
 * Counts responses whose bodies are still being sent: each body is passed through a stream that
 * notices when it has been read to the end (or cancelled), and hands it on in pieces of `MAX_PIECE`.
 */
class InFlight {
  #open = 0;
  #idle: (() => void)[] = [];

  track(response: Response): Response {
    if (!response.body) return response;
    this.#open++;
    const reader = response.body.getReader();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (--this.#open === 0) { for (const resolve of this.#idle.splice(0)) resolve(); }
    };
    let rest: Uint8Array | undefined; // what is left of a large chunk
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = rest === undefined ? await reader.read() : { done: false as const, value: rest };
          if (next.done) {
            finish();
            controller.close();
          } else {
            const chunk = next.value;
            rest = chunk.byteLength > MAX_PIECE ? chunk.subarray(MAX_PIECE) : undefined;
            controller.enqueue(rest === undefined ? chunk : chunk.subarray(0, MAX_PIECE));
          }
        } catch (error) {
          finish();
          controller.error(error);
        }
      },
      cancel(reason) {
        finish();
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  /** Resolves once no body is being sent. */
  idle(): Promise<void> {
    return this.#open === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve));
  }
}

/** Starts serving `handler` on `hostname:port` (port 0 picks a free one). Internal. */
export function serveFetch(handler: Handler, hostname: string, port: number): RunningServer {
  const deno = (globalThis as { Deno?: DenoServe }).Deno;
  if (deno) {
    // Deno's shutdown() waits for every response without end (19 s and more for a page that stopped
    // reading), and aborting the serve signal after it throws BadResource. So closing waits for the
    // responses it tracks itself: once all are read, shutdown() lets Deno flush their last bytes; if
    // the grace period ends first, aborting the signal closes the listener and every connection.
    const inFlight = new InFlight();
    const drop = new AbortController();
    let closing = false;
    const server = deno.serve({ hostname, port, onListen: () => {}, signal: drop.signal }, async (request) => {
      if (closing) return new Response("shutting down", { status: 503 });
      return inFlight.track(await handler(request));
    });
    return {
      port: server.addr.port,
      close: async (graceMs) => {
        closing = true;
        const idle = await Promise.race([inFlight.idle().then(() => true), pause(graceMs).then(() => false)]);
        if (idle) {
          await server.shutdown();
        } else {
          drop.abort();
          await server.finished;
        }
      },
    };
  }
  const bun = (globalThis as { Bun?: BunServe }).Bun;
  if (bun) {
    const server = bun.serve({ hostname, port, fetch: handler, idleTimeout: 0 });
    return {
      port: server.port,
      close: async (graceMs) => {
        // Stop listening and let open responses finish sending (the last status message);
        // connections still open after the grace period are closed.
        const force = setTimeout(() => void server.stop(true), graceMs);
        (force as unknown as { unref?: () => void }).unref?.();
        await server.stop(false);
        clearTimeout(force);
      },
    };
  }
  throw new Error("dashboard: serving needs Deno or Bun");
}
