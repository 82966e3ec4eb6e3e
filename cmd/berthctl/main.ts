#!/usr/bin/env node
import { CriClient } from "../../pkg/cri/index.js";
import { commands } from "./commands/index.js";
import { DEFAULT_SOCKET, describeError, UsageError, type CommandContext } from "./context.js";

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "usage: berthctl [--socket PATH] [--timeout SECONDS] [-o table|json|yaml] COMMAND [ARGS]",
    "",
    "The operator's CRI client for berth (and any CRI runtime). The socket defaults to",
    `$BERTH_SOCKET or ${DEFAULT_SOCKET}.`,
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "berthctl COMMAND --help shows a command's usage.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  let socket = process.env["BERTH_SOCKET"] || DEFAULT_SOCKET;
  let timeoutMs = 0;
  let output: CommandContext["output"] = "table";
  const rest: string[] = [];
  let name: string | undefined;
  // After the command name, --timeout belongs to the command (exec --timeout, stop --timeout);
  // -o/--output is global anywhere, except inside the command line that exec runs.
  let seenPositional = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const eq = a.indexOf("=");
      if (eq > 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (name === undefined && (a === "--socket" || a.startsWith("--socket=") || a === "-r" || a === "--runtime-endpoint" || a.startsWith("--runtime-endpoint="))) {
      socket = value().replace(/^unix:\/\//, "");
    } else if (seenPositional || (name !== undefined && (a === "--timeout" || a.startsWith("--timeout=")))) {
      rest.push(a);
    } else if (a === "--timeout" || a.startsWith("--timeout=")) {
      const s = Number(value().replace(/s$/, ""));
      if (!Number.isFinite(s) || s < 0) throw new UsageError("--timeout takes a number of seconds");
      timeoutMs = s * 1000;
    } else if (a === "-o" || a === "--output" || a.startsWith("--output=")) {
      const o = value();
      if (o !== "table" && o !== "json" && o !== "yaml") throw new UsageError(`-o: "${o}" is not one of table, json, yaml`);
      output = o;
    } else if (name === undefined && (a === "-h" || a === "--help")) {
      process.stdout.write(usage() + "\n");
      return 0;
    } else if (name === undefined && !a.startsWith("-")) {
      name = a;
    } else {
      if (name === "exec" && !a.startsWith("-")) seenPositional = true;
      rest.push(a);
    }
  }
  if (!name) {
    process.stderr.write(usage() + "\n");
    return 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command "${name}"; run berthctl --help for the list`);
  // Only a help flag right after the command asks for its usage: later ones belong to it
  // (berthctl exec ID ls -h).
  if (rest[0] === "--help" || rest[0] === "-h") {
    process.stdout.write(`${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  let client: CriClient | undefined;
  const ctx: CommandContext = {
    args: rest,
    socket,
    timeoutMs,
    output,
    client: () => (client ??= new CriClient(socket, { defaultTimeoutMs: timeoutMs || 10_000 })),
    out: (text) => void process.stdout.write(text.endsWith("\n") ? text : text + "\n"),
  };
  try {
    return (await command.run(ctx)) ?? 0;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    process.stderr.write(`berthctl ${name}: ${describeError(err, socket)}\n`);
    return 1;
  } finally {
    client?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`berthctl: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`berthctl: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
