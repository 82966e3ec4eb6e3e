import { closeSync, openSync, readSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerConfig, ContainerState, ContainerStatus, PodSandboxConfig, containerStateToJSON, type Container } from "../../../api/gen/cri/v1/api.js";
import type { CriClient } from "../../../pkg/cri/index.js";
import { readConfigFile } from "../config-file.js";
import { UsageError, type Command, type CommandContext } from "../context.js";
import { age, inspectDocs, parseVerboseInfo, table, toJson, toYaml } from "../format.js";
import { streamRemoteCommand } from "./exec-stream.js";

/** Splits args into flags (with values) and positionals; parsing stops at the first positional when `stopAtPositional`. */
function parseArgs(args: string[], bool: string[] = [], stopAtPositional = false): { flags: Map<string, string[]>; positional: string[] } {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith("-") || a === "-") {
      if (stopAtPositional) {
        positional.push(...args.slice(i));
        break;
      }
      positional.push(a);
      continue;
    }
    if (a === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    const eq = a.indexOf("=");
    const name = (eq > 0 ? a.slice(0, eq) : a).replace(/^-+/, "");
    let value = "true";
    if (eq > 0) value = a.slice(eq + 1);
    else if (!bool.includes(name)) {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      value = v;
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { flags, positional };
}

function timeout(ctx: CommandContext, fallback = 240_000): { timeoutMs: number } {
  return { timeoutMs: ctx.timeoutMs || fallback };
}

/** A full container id for an id or unique prefix (as given when nothing matches: stop/rm of unknown ids succeed). */
async function resolveContainer(client: CriClient, idOrPrefix: string): Promise<string> {
  const cs = (await client.runtime.listContainers({ filter: { id: idOrPrefix } })).containers;
  if (cs.length === 1 && cs[0]) return cs[0].id;
  if (cs.length > 1) throw new UsageError(`container id prefix "${idOrPrefix}" matches ${cs.length} containers`);
  return idOrPrefix;
}

function stateName(s: ContainerState): string {
  const names: Partial<Record<ContainerState, string>> = { [ContainerState.CONTAINER_CREATED]: "Created", [ContainerState.CONTAINER_RUNNING]: "Running", [ContainerState.CONTAINER_EXITED]: "Exited" };
  return names[s] ?? "Unknown";
}

function readContainerConfig(file: string): ContainerConfig {
  return ContainerConfig.fromJSON(readConfigFile(file));
}

async function ensureImage(client: CriClient, image: string, ctx: CommandContext): Promise<void> {
  const st = await client.image.imageStatus({ image: { image } });
  if (!st.image) await client.image.pullImage({ image: { image } }, timeout(ctx, 600_000));
}

export const createCommand: Command = {
  name: "create",
  summary: "create a container in a pod from JSON/YAML container and pod config files (crictl format)",
  usage: "berthctl create [--no-pull] POD_ID CONTAINER_CONFIG_FILE POD_CONFIG_FILE",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args, ["no-pull"]);
    if (positional.length !== 3) throw new UsageError("create takes POD_ID CONTAINER_CONFIG_FILE POD_CONFIG_FILE");
    const client = ctx.client();
    const config = readContainerConfig(positional[1] as string);
    const sandboxConfig = PodSandboxConfig.fromJSON(readConfigFile(positional[2] as string));
    if (!flags.has("no-pull") && config.image?.image) await ensureImage(client, config.image.image, ctx);
    const r = await client.runtime.createContainer({ podSandboxId: positional[0] as string, config, sandboxConfig }, timeout(ctx));
    ctx.out(r.containerId);
  },
};

export const startCommand: Command = {
  name: "start",
  summary: "start created containers",
  usage: "berthctl start CONTAINER_ID...",
  async run(ctx) {
    const { positional } = parseArgs(ctx.args);
    if (positional.length === 0) throw new UsageError("start needs at least one container id");
    for (const arg of positional) {
      const id = await resolveContainer(ctx.client(), arg);
      await ctx.client().runtime.startContainer({ containerId: id }, timeout(ctx));
      ctx.out(id);
    }
  },
};

export const stopCommand: Command = {
  name: "stop",
  summary: "stop running containers (stop signal, grace period, then SIGKILL)",
  usage: "berthctl stop [-t|--timeout SECONDS] CONTAINER_ID...",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args);
    if (positional.length === 0) throw new UsageError("stop needs at least one container id");
    const t = Number(flags.get("timeout")?.[0] ?? flags.get("t")?.[0] ?? "10");
    if (!Number.isInteger(t) || t < 0) throw new UsageError("--timeout takes a whole number of seconds");
    for (const arg of positional) {
      const id = await resolveContainer(ctx.client(), arg);
      await ctx.client().runtime.stopContainer({ containerId: id, timeout: BigInt(t) }, { timeoutMs: Math.max(ctx.timeoutMs, (t + 60) * 1000) });
      ctx.out(id);
    }
  },
};

export const rmCommand: Command = {
  name: "rm",
  summary: "remove containers (running ones are killed first with -f)",
  usage: "berthctl rm [-f|--force] [-a|--all] CONTAINER_ID...",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args, ["f", "force", "a", "all"]);
    const all = flags.has("a") || flags.has("all");
    const force = flags.has("f") || flags.has("force");
    if (positional.length === 0 && !all) throw new UsageError("rm needs container ids or --all");
    const client = ctx.client();
    const ids = all ? (await client.runtime.listContainers({})).containers.map((c) => c.id) : await Promise.all(positional.map((a) => resolveContainer(client, a)));
    let failed = 0;
    for (const id of ids) {
      if (!force) {
        const st = await client.runtime.containerStatus({ containerId: id }).catch(() => undefined);
        if (st?.status?.state === ContainerState.CONTAINER_RUNNING) {
          process.stderr.write(`container ${id} is running: stop it first or use --force\n`);
          failed++;
          continue;
        }
      }
      await client.runtime.removeContainer({ containerId: id }, timeout(ctx));
      ctx.out(id);
    }
    return failed > 0 ? 1 : 0;
  },
};

export const psCommand: Command = {
  name: "ps",
  summary: "list containers (running ones unless -a)",
  usage: "berthctl ps [-a] [--id ID] [-p|--pod POD_ID] [--name NAME] [--state created|running|exited|unknown] [--label KEY=VALUE]... [-q] [--no-trunc] [-o json|yaml]",
  async run(ctx) {
    const { flags } = parseArgs(ctx.args, ["a", "all", "q", "quiet", "no-trunc"]);
    const labelSelector: Record<string, string> = {};
    for (const l of flags.get("label") ?? []) {
      const i = l.indexOf("=");
      if (i <= 0) throw new UsageError(`--label takes KEY=VALUE, got "${l}"`);
      labelSelector[l.slice(0, i)] = l.slice(i + 1);
    }
    const states: Record<string, ContainerState> = { created: ContainerState.CONTAINER_CREATED, running: ContainerState.CONTAINER_RUNNING, exited: ContainerState.CONTAINER_EXITED, unknown: ContainerState.CONTAINER_UNKNOWN };
    const stateArg = flags.get("state")?.[0]?.toLowerCase();
    if (stateArg && states[stateArg] === undefined) throw new UsageError(`--state: "${stateArg}" is not created, running, exited or unknown`);
    const all = flags.has("a") || flags.has("all");
    const state = stateArg ? states[stateArg] : all ? undefined : ContainerState.CONTAINER_RUNNING;
    const filter = {
      id: flags.get("id")?.[0] ?? "",
      podSandboxId: flags.get("pod")?.[0] ?? flags.get("p")?.[0] ?? "",
      labelSelector,
      ...(state !== undefined ? { state: { state } } : {}),
    };
    let cs: Container[] = (await ctx.client().runtime.listContainers({ filter })).containers;
    const name = flags.get("name")?.[0];
    if (name) cs = cs.filter((c) => c.metadata?.name.includes(name));
    cs.sort((a, b) => (b.createdAt > a.createdAt ? 1 : b.createdAt < a.createdAt ? -1 : 0));
    if (flags.has("q") || flags.has("quiet")) return ctx.out(cs.map((c) => c.id).join("\n"));
    if (ctx.output === "json") return ctx.out(toJson({ containers: cs }));
    if (ctx.output === "yaml") return ctx.out(toYaml({ containers: cs }));
    const trunc = !flags.has("no-trunc");
    ctx.out(
      table(
        ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID"],
        cs.map((c) => [trunc ? c.id.slice(0, 13) : c.id, c.image?.image ?? "", age(c.createdAt), stateName(c.state), c.metadata?.name ?? "", String(c.metadata?.attempt ?? 0), trunc ? c.podSandboxId.slice(0, 13) : c.podSandboxId]),
      ),
    );
  },
};

export const inspectCommand: Command = {
  name: "inspect",
  summary: "show the status of containers (verbose info included)",
  usage: "berthctl inspect [-o json|yaml] CONTAINER_ID...",
  async run(ctx) {
    const { positional } = parseArgs(ctx.args);
    if (positional.length === 0) throw new UsageError("inspect needs at least one container id");
    const docs: unknown[] = [];
    for (const arg of positional) {
      const id = await resolveContainer(ctx.client(), arg);
      const r = await ctx.client().runtime.containerStatus({ containerId: id, verbose: true });
      const info = parseVerboseInfo(r.info);
      const status = r.status ? { ...(ContainerStatus.toJSON(r.status) as Record<string, unknown>), state: containerStateToJSON(r.status.state) } : undefined;
      docs.push({ status, info });
    }
    ctx.out(inspectDocs(docs, ctx.output));
  },
};

/** Writes the content of complete kubelet-format log lines in `text`; returns the unconsumed tail. */
function emitLog(text: string, timestamps: boolean): string {
  let start = 0;
  for (;;) {
    const nl = text.indexOf("\n", start);
    if (nl < 0) return text.slice(start);
    const line = text.slice(start, nl);
    start = nl + 1;
    const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/s.exec(line);
    if (!m) continue;
    const out = m[2] === "stderr" ? process.stderr : process.stdout;
    out.write(`${timestamps ? `${m[1]} ` : ""}${m[4]}${m[3] === "F" ? "\n" : ""}`);
  }
}

export const logsCommand: Command = {
  name: "logs",
  summary: "print a container's log (from its CRI log file); -f follows it until the container exits",
  usage: "berthctl logs [-f|--follow] [--timestamps] CONTAINER_ID",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args, ["f", "follow", "timestamps"]);
    if (positional.length !== 1) throw new UsageError("logs takes one container id");
    const client = ctx.client();
    const id = await resolveContainer(client, positional[0] as string);
    const st = (await client.runtime.containerStatus({ containerId: id })).status;
    const path = st?.logPath ?? "";
    if (!path) throw new UsageError(`container ${id} has no log file`);
    const follow = flags.has("f") || flags.has("follow");
    const ts = flags.has("timestamps");
    let offset = 0;
    let ino = -1;
    let tail = "";
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      let grew = false;
      try {
        const s = statSync(path);
        if (ino !== -1 && s.ino !== ino) {
          offset = 0; // rotated: start on the new file
          tail = "";
        }
        ino = s.ino;
        if (s.size < offset) offset = 0;
        const fd = openSync(path, "r");
        try {
          for (;;) {
            const n = readSync(fd, buf, 0, buf.length, offset);
            if (n <= 0) break;
            offset += n;
            grew = true;
            tail = emitLog(tail + buf.subarray(0, n).toString("utf8"), ts);
          }
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        if (!follow) throw err;
      }
      if (!follow) return;
      if (!grew) {
        const now = (await client.runtime.containerStatus({ containerId: id }).catch(() => undefined))?.status;
        if (!now || now.state === ContainerState.CONTAINER_EXITED) {
          await sleep(200);
          try {
            const fd = openSync(path, "r");
            try {
              for (;;) {
                const n = readSync(fd, buf, 0, buf.length, offset);
                if (n <= 0) break;
                offset += n;
                tail = emitLog(tail + buf.subarray(0, n).toString("utf8"), ts);
              }
            } finally {
              closeSync(fd);
            }
          } catch {
            /* gone */
          }
          return;
        }
        await sleep(250);
      }
    }
  },
};

export const execCommand: Command = {
  name: "exec",
  summary: "run a command in a running container: its output (ExecSync), or interactive with -i/-t (Exec streaming); exits with its exit code",
  usage: "berthctl exec [-i] [-t] [--transport spdy|websocket] [--timeout SECONDS] CONTAINER_ID COMMAND [ARG...]",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args, ["i", "t", "it", "ti", "stdin", "tty"], true);
    if (positional.length < 2) throw new UsageError("exec takes CONTAINER_ID COMMAND [ARG...]");
    const stdin = flags.has("i") || flags.has("stdin") || flags.has("it") || flags.has("ti");
    const tty = flags.has("t") || flags.has("tty") || flags.has("it") || flags.has("ti");
    const transport = flags.get("transport")?.[0] ?? "spdy";
    if (transport !== "spdy" && transport !== "websocket") throw new UsageError("--transport is spdy or websocket");
    const t = Number(flags.get("timeout")?.[0] ?? "0");
    if (!Number.isInteger(t) || t < 0) throw new UsageError("--timeout takes a whole number of seconds");
    if ((stdin || tty) && t > 0) throw new UsageError("--timeout applies to exec without -i/-t only");
    const client = ctx.client();
    const id = await resolveContainer(client, positional[0] as string);
    const cmd = positional.slice(1);
    if (stdin || tty) {
      // Exec returns a streaming URL; the session runs on this terminal (raw mode and resizes with -t).
      const { url } = await client.runtime.exec({ containerId: id, cmd, stdin, tty, stdout: true, stderr: !tty }, timeout(ctx, 60_000));
      return await streamRemoteCommand(url, { stdin, tty, transport });
    }
    const r = await client.runtime.execSync({ containerId: id, cmd, timeout: BigInt(t) }, { timeoutMs: t > 0 ? (t + 30) * 1000 : 24 * 3600 * 1000 });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    return r.exitCode;
  },
};

export const runCommand: Command = {
  name: "run",
  summary: "run a pod and a container in it from JSON/YAML config files in one step (crictl run)",
  usage: "berthctl run [--runtime HANDLER] [--no-pull] CONTAINER_CONFIG_FILE POD_CONFIG_FILE",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args, ["no-pull"]);
    if (positional.length !== 2) throw new UsageError("run takes CONTAINER_CONFIG_FILE POD_CONFIG_FILE");
    const client = ctx.client();
    const config = readContainerConfig(positional[0] as string);
    const sandboxConfig = PodSandboxConfig.fromJSON(readConfigFile(positional[1] as string));
    if (!flags.has("no-pull") && config.image?.image) await ensureImage(client, config.image.image, ctx);
    const pod = await client.runtime.runPodSandbox({ config: sandboxConfig, runtimeHandler: flags.get("runtime")?.[0] ?? "" }, timeout(ctx));
    try {
      const c = await client.runtime.createContainer({ podSandboxId: pod.podSandboxId, config, sandboxConfig }, timeout(ctx));
      await client.runtime.startContainer({ containerId: c.containerId }, timeout(ctx));
      ctx.out(c.containerId);
    } catch (err) {
      await client.runtime.removePodSandbox({ podSandboxId: pod.podSandboxId }).catch(() => undefined);
      throw err;
    }
  },
};

export const containerCommands: Command[] = [createCommand, startCommand, stopCommand, rmCommand, psCommand, inspectCommand, logsCommand, execCommand, runCommand];
