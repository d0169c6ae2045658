/**
 * fitstream's command line: chart or serve a finished run's JSONL log.
 *
 *   deno run -A cli.ts plot run.jsonl -o run.svg [--keys train_loss,val_loss] [--log]
 *   deno run -A cli.ts serve run.jsonl [--port 8080] [--host 127.0.0.1]
 *
 * (`bun cli.ts …` works the same.)
 *
 * @module
 */
import process from "node:process";
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { dashboard, fromJsonl, plotSvg } from "./mod.ts";

const HELP = `fitstream: chart or serve a run's JSONL log

Usage:
  cli.ts plot <run.jsonl> -o <run.svg> [--keys k1,k2] [--log] [--title T]
  cli.ts serve <run.jsonl> [--port N] [--host H]     (Ctrl-C stops the server)
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      keys: { type: "string" },
      log: { type: "boolean", default: false },
      title: { type: "string" },
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, source] = positionals;
  if (values.help || !command) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  if (!source) throw new Error(`${command}: name the JSONL log to read`);
  if (command === "plot") {
    if (!values.out) throw new Error("plot: name the SVG to write with -o <file>");
    const keys = values.keys?.split(",").map((k) => k.trim()).filter((k) => k !== "");
    // A log whose writer was killed mid-line still plots: the cut-off last line is left out.
    await fromJsonl(source, { partialLastLine: "skip" }).pipeTo(
      plotSvg(values.out, { keys, logY: values.log, title: values.title }),
    );
    console.log(`wrote ${values.out}`);
    return 0;
  }
  if (command === "serve") {
    if (!/^https?:\/\//i.test(source) && !statSync(source, { throwIfNoEntry: false })?.isFile()) {
      throw new Error(`serve: "${source}" is not a file`);
    }
    const port = Number(values.port);
    const board = dashboard({
      port,
      host: values.host,
      linger: true,
      onListen: (url) => console.log(`serving ${source} at ${url}`),
    });
    let stopping = false;
    for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      process.on(name, () => {
        if (stopping) process.exit(130); // a second Ctrl-C does not wait for slow pages
        stopping = true;
        void board.close();
      });
    }
    try {
      await fromJsonl(source, { partialLastLine: "skip" }).pipeThrough(board).pipeTo(new WritableStream());
    } catch (error) {
      await board.close();
      throw error;
    }
    console.log("replayed; Ctrl-C to stop");
    await board.closed;
    return 0;
  }
  throw new Error(`unknown command "${command}" (use plot or serve)`);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`fitstream: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
