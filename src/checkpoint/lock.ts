/**
 * One writer per checkpoint folder. A run claims the folder before it first
 * saves there by creating `run.lock` exclusively (`wx`: of two runs that try
 * at once, the OS lets exactly one create it), and gives it back when its
 * stream ends. The lock names the run, the process and the machine, so the
 * run that is refused is told who holds the folder.
 *
 * A lock whose process is gone (a run killed with SIGKILL) is stale and
 * taken over, and so is any lock written before this machine last started (a
 * power cut can leave one empty: its data never reached the disk). Other
 * processes can be proven gone only on this machine, so a lock written
 * elsewhere (a shared disk) is respected until removed by hand.
 * While a run holds the claim nobody else saves in the folder, so whatever
 * temporary folders it finds there were left by runs that died mid-save.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { link, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { hostname, uptime } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** The lock file's name inside a checkpoint folder. Internal. */
export const LOCK_FILE = "run.lock";

interface LockRecord {
  run_id: string;
  /** Tells this claim from another of the same run (a run resumed twice at once). */
  token: string;
  pid: number;
  host: string;
  since: string;
}

/** A held claim on a folder. Internal. */
export interface FolderClaim {
  /** Removes the lock if it is still this claim's (idempotent). */
  release(): Promise<void>;
}

/**
 * Tokens of the locks this process holds or is creating: a lock with this
 * process's pid is live only if its token is here (else an earlier process
 * had the same pid). A token joins before its lock is created, as another
 * stream may read the new lock before the creating one resumes.
 */
const ours = new Set<string>();

const codeOf = (error: unknown) => (error as { code?: string }).code;

/** This machine's name, or a placeholder where it may not be read (Deno without `--allow-sys`). */
function thisHost(): string {
  try {
    return hostname();
  } catch {
    return "(unknown host)";
  }
}

/** When this machine started (ms since 1970), or `undefined` where that may not be read. */
function bootTime(): number | undefined {
  try {
    return Date.now() - uptime() * 1000;
  } catch {
    return undefined;
  }
}

/** Clocks step (NTP): a lock must predate the boot by this much to count as written before it. */
const BOOT_SLACK_MS = 60_000;

/** The lock's text, or `undefined` when there is none (released meanwhile). */
async function readLock(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined;
    throw error;
  }
}

function parseLock(text: string): LockRecord | undefined {
  try {
    const record = JSON.parse(text) as LockRecord;
    return typeof record.pid === "number" && typeof record.host === "string" ? record : undefined;
  } catch {
    return undefined; // being written by its creator this instant, or damaged: not provably stale
  }
}

/** Whether the process that wrote the lock at `path` (whose text is `text`) is provably gone. */
async function isStale(path: string, text: string): Promise<boolean> {
  const booted = bootTime();
  if (booted !== undefined) {
    const written = await stat(path).then((s) => s.mtimeMs, () => undefined);
    if (written !== undefined && written < booted - BOOT_SLACK_MS) return true; // no process outlives a reboot
  }
  const record = parseLock(text);
  if (record === undefined) return false; // being written this instant, or damaged: a person must look
  if (record.host !== thisHost()) return false; // another machine's processes cannot be checked from here
  if (record.pid === process.pid) return !ours.has(record.token);
  try {
    process.kill(record.pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (error) {
    return codeOf(error) === "ESRCH"; // EPERM: it exists, owned by another user
  }
}

/**
 * Removes the stale lock whose text is `staleText`, unless another run
 * replaced it meanwhile: the lock is renamed aside first (one rename of it
 * succeeds), and a fresh lock moved by mistake is linked back.
 */
async function removeStale(dir: string, path: string, staleText: string): Promise<void> {
  const aside = join(dir, `.stale-lock-${randomUUID()}`);
  try {
    await rename(path, aside);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return; // another run took it over first
    throw error;
  }
  try {
    if ((await readFile(aside, "utf8")) !== staleText) {
      // A run claimed the folder between our read and our rename: give its lock back. (Should a third
      // run create one in that instant too, link fails and both would hold it: three runs starting into
      // one folder over a dead run's lock at the same moment.)
      await link(aside, path).catch(() => {});
    }
  } finally {
    await rm(aside, { force: true });
  }
}

function inUse(where: string, dir: string, path: string, text: string): Error {
  const record = parseLock(text);
  const holder = record === undefined
    ? `its ${LOCK_FILE} is being written or unreadable`
    : record.pid === process.pid && record.host === thisHost()
    ? `run ${record.run_id}, another stream of this process, since ${record.since}`
    : `run ${record.run_id}, process ${record.pid} on ${record.host}, since ${record.since}`;
  return new Error(
    `${where}: "${dir}" is in use by another run (${holder}): two runs saving into one folder overwrite each ` +
      `other's checkpoints. Give this run its own folder, or wait until that run ends (if no run uses the folder ` +
      `any more, delete "${path}")`,
  );
}

/**
 * Claims `dir` for run `runId`, or throws an error starting with `where`
 * that names the folder and the run holding it. Internal.
 */
export async function claimFolder(where: string, dir: string, runId: string): Promise<FolderClaim> {
  const path = join(dir, LOCK_FILE);
  const token = randomUUID();
  const record: LockRecord = {
    run_id: runId,
    token,
    pid: process.pid,
    host: thisHost(),
    since: new Date().toISOString(),
  };
  // A few rounds: each lost one means another run released, took over or created the lock meanwhile.
  for (let round = 0; round < 5; round++) {
    ours.add(token);
    try {
      await writeFile(path, JSON.stringify(record) + "\n", { flag: "wx" });
      return { release: () => release(path, token) };
    } catch (error) {
      ours.delete(token);
      if (codeOf(error) !== "EEXIST") {
        throw new Error(`${where}: cannot claim "${dir}" (creating "${path}"): ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    const text = await readLock(path);
    if (text === undefined) continue;
    if (!(await isStale(path, text))) throw inUse(where, dir, path, text);
    await removeStale(dir, path, text);
  }
  throw new Error(
    `${where}: cannot claim "${dir}": its ${LOCK_FILE} kept changing (other runs are starting in it); give this ` +
      `run its own folder`,
  );
}

async function release(path: string, token: string): Promise<void> {
  if (!ours.delete(token)) return;
  const text = await readLock(path).catch(() => undefined);
  if (text !== undefined && parseLock(text)?.token === token) await rm(path, { force: true });
}
