import { PodSandboxConfig, PodSandboxState, PodSandboxStatus, podSandboxStateToJSON, type PodSandbox } from "../../../api/gen/cri/v1/api.js";
import type { CriClient } from "../../../pkg/cri/index.js";
import { readConfigFile } from "../config-file.js";
import { UsageError, type Command } from "../context.js";
import { age, inspectDocs, parseVerboseInfo, table, toJson, toYaml } from "../format.js";

/** Splits args into flags (with values) and positionals. `bool` names flags without a value. */
function parseArgs(args: string[], bool: string[] = []): { flags: Map<string, string[]>; positional: string[] } {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith("-") || a === "-") {
      positional.push(a);
      continue;
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

/** A full pod id for an id or unique prefix (as given when nothing matches: stop/remove of unknown pods succeed). */
async function resolvePod(client: CriClient, idOrPrefix: string): Promise<string> {
  const items = (await client.runtime.listPodSandbox({ filter: { id: idOrPrefix } })).items;
  if (items.length === 1 && items[0]) return items[0].id;
  if (items.length > 1) throw new UsageError(`pod id prefix "${idOrPrefix}" matches ${items.length} pods`);
  return idOrPrefix;
}

function stateName(s: PodSandboxState): string {
  return s === PodSandboxState.SANDBOX_READY ? "Ready" : "NotReady";
}

export const runpCommand: Command = {
  name: "runp",
  summary: "run a pod sandbox from a JSON/YAML pod config file (crictl format)",
  usage: "berthctl runp [--runtime HANDLER] POD_CONFIG_FILE",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args);
    if (positional.length !== 1) throw new UsageError("runp takes one pod config file");
    const config = PodSandboxConfig.fromJSON(readConfigFile(positional[0] as string));
    const r = await ctx.client().runtime.runPodSandbox({ config, runtimeHandler: flags.get("runtime")?.[0] ?? "" }, ctx.timeoutMs ? { timeoutMs: ctx.timeoutMs } : { timeoutMs: 240_000 });
    ctx.out(r.podSandboxId);
  },
};

export const podsCommand: Command = {
  name: "pods",
  summary: "list pod sandboxes",
  usage: "berthctl pods [--id ID] [--name NAME] [--namespace NS] [--state ready|notready] [--label KEY=VALUE]... [-q] [--no-trunc] [-o json|yaml]",
  async run(ctx) {
    const { flags } = parseArgs(ctx.args, ["q", "quiet", "no-trunc"]);
    const state = flags.get("state")?.[0]?.toLowerCase();
    if (state && !["ready", "notready", "sandbox_ready", "sandbox_notready"].includes(state)) throw new UsageError(`--state: "${state}" is not ready or notready`);
    const labelSelector: Record<string, string> = {};
    for (const l of flags.get("label") ?? []) {
      const i = l.indexOf("=");
      if (i <= 0) throw new UsageError(`--label takes KEY=VALUE, got "${l}"`);
      labelSelector[l.slice(0, i)] = l.slice(i + 1);
    }
    const filter = {
      id: flags.get("id")?.[0] ?? "",
      labelSelector,
      ...(state ? { state: { state: state.endsWith("notready") ? PodSandboxState.SANDBOX_NOTREADY : PodSandboxState.SANDBOX_READY } } : {}),
    };
    let items: PodSandbox[] = (await ctx.client().runtime.listPodSandbox({ filter })).items;
    const name = flags.get("name")?.[0];
    const ns = flags.get("namespace")?.[0];
    if (name) items = items.filter((p) => p.metadata?.name.includes(name));
    if (ns) items = items.filter((p) => p.metadata?.namespace === ns);
    items.sort((a, b) => (b.createdAt > a.createdAt ? 1 : b.createdAt < a.createdAt ? -1 : 0));
    if (flags.has("q") || flags.has("quiet")) return ctx.out(items.map((p) => p.id).join("\n"));
    if (ctx.output === "json") return ctx.out(toJson({ items }));
    if (ctx.output === "yaml") return ctx.out(toYaml({ items }));
    const trunc = !flags.has("no-trunc");
    ctx.out(
      table(
        ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"],
        items.map((p) => [trunc ? p.id.slice(0, 13) : p.id, age(p.createdAt), stateName(p.state), p.metadata?.name ?? "", p.metadata?.namespace ?? "", String(p.metadata?.attempt ?? 0), p.runtimeHandler || "(default)"]),
      ),
    );
  },
};

export const inspectpCommand: Command = {
  name: "inspectp",
  summary: "show the status of pod sandboxes (verbose info included)",
  usage: "berthctl inspectp [-o json|yaml] POD_ID...",
  async run(ctx) {
    const { positional } = parseArgs(ctx.args);
    if (positional.length === 0) throw new UsageError("inspectp needs at least one pod id");
    const docs: unknown[] = [];
    for (const arg of positional) {
      const id = await resolvePod(ctx.client(), arg);
      const r = await ctx.client().runtime.podSandboxStatus({ podSandboxId: id, verbose: true });
      const info = parseVerboseInfo(r.info);
      // toJSON drops zero values; the state is shown even when it is SANDBOX_READY (0).
      const status = r.status ? { ...(PodSandboxStatus.toJSON(r.status) as Record<string, unknown>), state: podSandboxStateToJSON(r.status.state) } : undefined;
      docs.push({ status, info });
    }
    ctx.out(inspectDocs(docs, ctx.output));
  },
};

export const stoppCommand: Command = {
  name: "stopp",
  summary: "stop pod sandboxes (their containers too); stopping an unknown or stopped pod succeeds",
  usage: "berthctl stopp POD_ID...",
  async run(ctx) {
    const { positional } = parseArgs(ctx.args);
    if (positional.length === 0) throw new UsageError("stopp needs at least one pod id");
    for (const arg of positional) {
      const id = await resolvePod(ctx.client(), arg);
      await ctx.client().runtime.stopPodSandbox({ podSandboxId: id }, { timeoutMs: ctx.timeoutMs || 240_000 });
      ctx.out(`Stopped sandbox ${id}`);
    }
  },
};

export const rmpCommand: Command = {
  name: "rmp",
  summary: "remove pod sandboxes (stopping them and removing their containers)",
  usage: "berthctl rmp [-a|--all] POD_ID...",
  async run(ctx) {
    const { flags, positional } = parseArgs(ctx.args, ["a", "all", "f", "force"]);
    const all = flags.has("a") || flags.has("all");
    if (positional.length === 0 && !all) throw new UsageError("rmp needs pod ids or --all");
    const ids = all ? (await ctx.client().runtime.listPodSandbox({})).items.map((p) => p.id) : await Promise.all(positional.map((a) => resolvePod(ctx.client(), a)));
    for (const id of ids) {
      await ctx.client().runtime.removePodSandbox({ podSandboxId: id }, { timeoutMs: ctx.timeoutMs || 240_000 });
      ctx.out(`Removed sandbox ${id}`);
    }
  },
};
