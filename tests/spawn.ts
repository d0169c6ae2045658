/** Runs a script of this repository in a child process of the current runtime (Deno or Bun). */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

/** The repository root. */
export const root: string = fileURLToPath(new URL("..", import.meta.url));

/** What a finished child process left. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` with `args` (`deno run -A` under Deno, `bun` under Bun) and collects its output. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const argv = "Deno" in globalThis ? ["run", "-A", script, ...args] : [script, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: root, env: { ...process.env, NO_COLOR: "1", ...env } });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
