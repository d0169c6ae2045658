/**
 * Runs a script of this repository in a child process of the current runtime
 * (Deno or Bun). Under Deno it uses `Deno.Command`: Deno's `node:child_process`
 * reports an exit status above 128 (say 130 after a SIGINT handler) as if the
 * child had died of the signal, which would hide the status under test.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

/** The repository root. */
export const root: string = fileURLToPath(new URL("..", import.meta.url));

/** What a finished child process left. */
export interface RunResult {
  /** The exit status, or `null` when a signal ended the process. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running child: send it signals, await its result. */
export interface Started {
  kill(signal: "SIGINT" | "SIGKILL" | "SIGTERM" | "SIGHUP"): void;
  done: Promise<RunResult>;
}

interface DenoChild {
  kill(signal: string): void;
  output(): Promise<{ code: number; signal: string | null; stdout: Uint8Array; stderr: Uint8Array }>;
}
interface DenoLike {
  execPath(): string;
  Command: new (cmd: string, opts: Record<string, unknown>) => { spawn(): DenoChild };
}

/** Starts `script` with `args` (`deno run -A` under Deno, `bun` under Bun). */
export function startScript(script: string, args: string[], env: Record<string, string> = {}): Started {
  const fullEnv = { ...process.env, NO_COLOR: "1", ...env } as Record<string, string>;
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (deno) {
    const child = new deno.Command(deno.execPath(), {
      args: ["run", "-A", script, ...args],
      cwd: root,
      env: fullEnv,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const decoder = new TextDecoder();
    const done = child.output().then((o) => ({
      code: o.signal ? null : o.code,
      stdout: decoder.decode(o.stdout),
      stderr: decoder.decode(o.stderr),
    }));
    return { kill: (signal) => child.kill(signal), done };
  }
  const child = spawn(process.execPath, [script, ...args], { cwd: root, env: fullEnv });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  return { kill: (signal) => void child.kill(signal), done };
}

/** Runs `script` to the end and collects its output. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return startScript(script, args, env).done;
}
