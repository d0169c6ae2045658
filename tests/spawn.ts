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

/** A running child: send it signals, read what it printed so far, await its result. */
export interface Started {
  /** Sends `signal`; a child that has already exited is left alone. */
  kill(signal: "SIGINT" | "SIGKILL" | "SIGTERM" | "SIGHUP"): void;
  /** Its standard output so far. */
  output(): string;
  done: Promise<RunResult>;
}

interface DenoChild {
  kill(signal: string): void;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  status: Promise<{ code: number; signal: string | null }>;
}

/** Reads a byte stream to the end, calling `add` with each decoded piece. */
async function drain(stream: ReadableStream<Uint8Array>, add: (text: string) => void): Promise<void> {
  for await (const text of stream.pipeThrough(new TextDecoderStream())) add(text);
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
    let stdout = "", stderr = "", exited = false;
    const read = Promise.all([drain(child.stdout, (t) => (stdout += t)), drain(child.stderr, (t) => (stderr += t))]);
    const done = Promise.all([child.status, read]).then(([status]) => {
      exited = true;
      return { code: status.signal ? null : status.code, stdout, stderr };
    });
    return {
      kill: (signal) => {
        if (!exited) child.kill(signal);
      },
      output: () => stdout,
      done,
    };
  }
  const child = spawn(process.execPath, [script, ...args], { cwd: root, env: fullEnv });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  return { kill: (signal) => void child.kill(signal), output: () => stdout, done };
}

/** Runs `script` to the end and collects its output. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return startScript(script, args, env).done;
}
