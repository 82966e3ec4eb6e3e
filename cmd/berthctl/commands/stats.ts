import {
  ContainerEventResponse,
  ContainerStats,
  PodSandboxStats,
  containerEventTypeToJSON,
  type ContainerStatsFilter,
  type DeepPartial,
  type PodSandboxStatsFilter,
} from "../../../api/gen/cri/v1/api.js";
import { UsageError, type Command, type CommandContext } from "../context.js";
import { bytes, table, toJson, toYaml } from "../format.js";

interface Parsed {
  flags: Map<string, string[]>;
  positional: string[];
}

function parse(args: string[], valued: string[]): Parsed {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith("-")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = (eq > 0 ? a.slice(0, eq) : a).replace(/^-+/, "");
    if (!valued.includes(name)) throw new UsageError(`unknown flag ${a}`);
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { flags, positional };
}

function labels(p: Parsed): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of p.flags.get("label") ?? []) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new UsageError(`--label "${l}": expected KEY=VALUE`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

/** CPU as a percentage of one core, from nano-cores ("-" until the runtime has two samples). */
function cpuPercent(nanoCores: bigint | undefined): string {
  return nanoCores === undefined ? "-" : `${(Number(nanoCores) / 1e7).toFixed(2)}`;
}

function opt(v: { value: bigint } | undefined, fmt: (n: bigint) => string = (n) => String(n)): string {
  return v === undefined ? "-" : fmt(v.value);
}

function print(ctx: CommandContext, doc: unknown, tableText: () => string): void {
  if (ctx.output === "json") ctx.out(toJson(doc));
  else if (ctx.output === "yaml") ctx.out(toYaml(doc));
  else ctx.out(tableText());
}

export const statsCommand: Command = {
  name: "stats",
  summary: "show container stats (CPU, memory, writable layer) from the runtime's cache",
  usage: "berthctl stats [CONTAINER_ID] [--pod POD_ID] [--label KEY=VALUE]... [-o table|json|yaml]",
  async run(ctx) {
    const p = parse(ctx.args, ["pod", "label"]);
    if (p.positional.length > 1) throw new UsageError("stats takes at most one CONTAINER_ID");
    const filter: DeepPartial<ContainerStatsFilter> = { id: p.positional[0] ?? "", podSandboxId: p.flags.get("pod")?.at(-1) ?? "", labelSelector: labels(p) };
    const res = await ctx.client().runtime.listContainerStats({ filter });
    print(ctx, { stats: res.stats.map((s) => ContainerStats.toJSON(s)) }, () =>
      table(
        ["CONTAINER", "NAME", "CPU %", "MEM", "RSS", "DISK", "INODES"],
        res.stats.map((s) => [
          (s.attributes?.id ?? "").slice(0, 13),
          s.attributes?.metadata?.name ?? "",
          cpuPercent(s.cpu?.usageNanoCores?.value),
          opt(s.memory?.workingSetBytes, bytes),
          opt(s.memory?.rssBytes, bytes),
          opt(s.writableLayer?.usedBytes, bytes),
          opt(s.writableLayer?.inodesUsed),
        ]),
      ),
    );
  },
};

export const statspCommand: Command = {
  name: "statsp",
  summary: "show pod stats (CPU, memory, network, processes) from the runtime's cache",
  usage: "berthctl statsp [POD_ID] [--label KEY=VALUE]... [-o table|json|yaml]",
  async run(ctx) {
    const p = parse(ctx.args, ["label"]);
    if (p.positional.length > 1) throw new UsageError("statsp takes at most one POD_ID");
    const filter: DeepPartial<PodSandboxStatsFilter> = { id: p.positional[0] ?? "", labelSelector: labels(p) };
    const res = await ctx.client().runtime.listPodSandboxStats({ filter });
    print(ctx, { stats: res.stats.map((s) => PodSandboxStats.toJSON(s)) }, () =>
      table(
        ["POD", "NAME", "CPU %", "MEM", "NET RX", "NET TX", "PROCS", "CONTAINERS"],
        res.stats.map((s) => {
          const l = s.linux;
          const net = l?.network?.defaultInterface;
          return [
            (s.attributes?.id ?? "").slice(0, 13),
            s.attributes?.metadata?.name ?? "",
            cpuPercent(l?.cpu?.usageNanoCores?.value),
            opt(l?.memory?.workingSetBytes, bytes),
            opt(net?.rxBytes, bytes),
            opt(net?.txBytes, bytes),
            opt(l?.process?.processCount),
            String(l?.containers.length ?? 0),
          ];
        }),
      ),
    );
  },
};

/** RFC 3339 with nanoseconds from ns since the epoch. */
function rfc3339(ns: bigint): string {
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${String(ns % 1_000_000_000n).padStart(9, "0")}Z`;
}

export const eventsCommand: Command = {
  name: "events",
  summary: "follow container lifecycle events (GetContainerEvents) until interrupted",
  usage: "berthctl events [--count N] [-o table|json|yaml]",
  async run(ctx) {
    const p = parse(ctx.args, ["count"]);
    if (p.positional.length > 0) throw new UsageError("events takes no arguments");
    const countFlag = p.flags.get("count")?.at(-1);
    const count = countFlag === undefined ? Infinity : Number(countFlag);
    if (countFlag !== undefined && (!Number.isInteger(count) || count <= 0)) throw new UsageError(`--count "${countFlag}": expected a positive integer`);
    // A stream has no deadline: it runs until interrupted or --count events were shown.
    const stream = ctx.client().runtime.getContainerEvents({}, { timeoutMs: 0 });
    let seen = 0;
    const stop = (): void => stream.cancel();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      await new Promise<void>((resolve, reject) => {
        stream.on("data", (ev: ContainerEventResponse) => {
          if (seen >= count) return;
          seen++;
          if (ctx.output === "json") ctx.out(JSON.stringify(ContainerEventResponse.toJSON(ev)));
          else if (ctx.output === "yaml") ctx.out(`---\n${toYaml(ContainerEventResponse.toJSON(ev))}`);
          else {
            const status = ev.containersStatuses.find((c) => c.id === ev.containerId);
            ctx.out([rfc3339(ev.createdAt), containerEventTypeToJSON(ev.containerEventType).padEnd(23), ev.containerId.slice(0, 13), status?.metadata?.name ?? "", `pod=${(ev.podSandboxStatus?.id ?? "").slice(0, 13)}`].join("  "));
          }
          if (seen >= count) stream.cancel();
        });
        stream.on("error", (err: { code?: number }) => (err.code === 1 /* CANCELLED */ ? resolve() : reject(err)));
        stream.on("end", () => resolve());
      });
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
  },
};

export const statsCommands: Command[] = [statsCommand, statspCommand, eventsCommand];
