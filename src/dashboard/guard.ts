/**
 * What every page server of fitstream sends and checks: security headers on
 * every response, and only requests addressed to the server (`Host`), so a
 * page from another site that rebinds its name to this address (DNS
 * rebinding) reads nothing.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** The `Host` values a server on `host:port` answers. */
function hostsServed(host: string, port: number, extra: readonly string[]): Set<string> {
  const names = [host.includes(":") ? `[${host}]` : host];
  if (host === "127.0.0.1" || host === "::1" || host === "localhost") names.push("localhost", "127.0.0.1", "[::1]");
  const allowed = new Set(extra.map((h) => h.toLowerCase()));
  for (const name of names) {
    allowed.add(`${name}:${port}`);
    if (port === 80) allowed.add(name);
  }
  return allowed;
}

/**
 * A Hono middleware, to register before every route: answers 421 to a
 * request whose `Host` is not the served address (unless bound to every
 * interface, where the names it is reached by are unknown), and puts the
 * security headers on every response. Call `listening(port)` once the port
 * is known. Internal.
 */
export function guard(host: string, extraHosts: readonly string[]): {
  middleware: MiddlewareHandler;
  listening(port: number): void;
} {
  const anyHost = host === "0.0.0.0" || host === "::";
  let allowed = new Set<string>();
  return {
    middleware: async (c, next) => {
      const hostHeader = (c.req.header("host") ?? "").toLowerCase();
      if (!anyHost && !allowed.has(hostHeader)) {
        c.res = c.text(`misdirected request: this server answers ${[...allowed][0]}`, 421);
      } else {
        await next();
      }
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
    },
    listening(port) {
      allowed = hostsServed(host, port, extraHosts);
    },
  };
}
