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
  /** Stops listening and closes open connections once their responses are sent. */
  close(): Promise<void>;
  /** Stops holding the process for connections that will not finish (after `close`). */
  abort(): void;
}

type Handler = (request: Request) => Response | Promise<Response>;

interface DenoServe {
  serve(options: { hostname: string; port: number; onListen?: () => void }, handler: Handler): {
    addr: { port: number };
    shutdown(): Promise<void>;
    unref(): void;
    finished: Promise<void>;
  };
}
interface BunServe {
  serve(options: { hostname: string; port: number; fetch: Handler; idleTimeout?: number }): {
    port: number;
    stop(closeActive?: boolean): void | Promise<void>;
  };
}

/** Starts serving `handler` on `hostname:port` (port 0 picks a free one). Internal. */
export function serveFetch(handler: Handler, hostname: string, port: number): RunningServer {
  const deno = (globalThis as { Deno?: DenoServe }).Deno;
  if (deno) {
    const server = deno.serve({ hostname, port, onListen: () => {} }, handler);
    let shutdown: Promise<void> | undefined;
    return {
      port: server.addr.port,
      close: () => (shutdown ??= server.shutdown()),
      abort: () => server.unref(),
    };
  }
  const bun = (globalThis as { Bun?: BunServe }).Bun;
  if (bun) {
    const server = bun.serve({ hostname, port, fetch: handler, idleTimeout: 0 });
    return {
      port: server.port,
      close: async () => {
        // Stop listening and let open responses finish sending (the last status message);
        // connections still open after a grace period are closed.
        const force = setTimeout(() => void server.stop(true), 2000);
        (force as unknown as { unref?: () => void }).unref?.();
        await server.stop(false);
      },
      abort: () => void server.stop(true),
    };
  }
  throw new Error("dashboard: serving needs Deno or Bun");
}
