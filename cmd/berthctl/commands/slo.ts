import type { SloReport, SloStatus, SloWindowValue } from "../../../pkg/slo/index.js";
import { UsageError, type Command, type CommandContext } from "../context.js";
import { table, toJson, toYaml } from "../format.js";

const DEFAULT_METRICS_ADDRESS = "127.0.0.1:9731";

/** The metrics listener: --address, $BERTH_METRICS_ADDRESS, or the daemon's own config (CRI Status, verbose). */
async function metricsAddress(ctx: CommandContext, flag: string | undefined): Promise<string> {
  if (flag) return flag;
  const env = process.env["BERTH_METRICS_ADDRESS"];
  if (env) return env;
  try {
    const st = await ctx.client().runtime.status({ verbose: true });
    const cfg = JSON.parse(st.info["config"] ?? "{}") as { metrics?: { address?: string } };
    const addr = cfg.metrics?.address;
    if (addr === "") throw new UsageError("the runtime serves no metrics listener (metrics.address is empty): no SLO report to read");
    if (addr && !addr.endsWith(":0")) return addr;
    if (addr) throw new UsageError(`the runtime's metrics listener picks a free port (${addr}); pass --address HOST:PORT (berthd logs it at start)`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // Not berth, or no verbose info: fall back to the default.
  }
  return DEFAULT_METRICS_ADDRESS;
}

const pct = (v: number | null): string => (v === null ? "-" : `${v >= 99.995 && v < 100 ? v.toFixed(3) : v.toFixed(2)}%`);
const burn = (v: number | null): string => (v === null ? "-" : v.toFixed(v >= 10 ? 0 : 1));
const count = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));

function sliCell(w: SloWindowValue | undefined, indicator: boolean): string {
  if (!w || w.events === 0) return "-";
  // An indicator has no objective: show how many of its events were bad.
  if (indicator) return `${count(w.bad)} of ${count(w.events)}`;
  return `${pct(w.sli)} (${count(w.bad)}/${count(w.events)})`;
}

function budgetCell(s: SloStatus): string {
  const b = s.errorBudget;
  if (!b || b.remaining === null) return "-";
  if (b.remaining >= 0) return `${(100 * b.remaining).toFixed(1)}%`;
  return `0% (${(1 - b.remaining).toFixed(1)}x spent)`;
}

function objectiveCell(s: SloStatus): string {
  return s.objective === null ? `- / ${s.window}` : `${s.objective}% / ${s.window}`;
}

/** One screen per node: each objective over 1 h / 6 h / its window, budget left, burn rates, and why. */
export function renderSloReport(r: SloReport): string {
  const rows = r.slos.map((s) => {
    const [h1, h6, long] = s.windows;
    return [
      s.name,
      s.title,
      objectiveCell(s),
      sliCell(h1, s.objective === null),
      sliCell(h6, s.objective === null),
      sliCell(long, s.objective === null),
      budgetCell(s),
      s.objective === null ? "-" : `${burn(h1?.burnRate ?? null)} / ${burn(h6?.burnRate ?? null)}`,
      s.state,
    ];
  });
  const out = [
    `node ${r.node}   ${r.generatedAt}   (counters flushed ${r.flushedAt ?? "not yet"})`,
    "",
    table(["SLO", "PROMISE", "OBJECTIVE", "1H", "6H", "WINDOW", "BUDGET LEFT", "BURN 1H/6H", "STATE"], rows),
  ];
  const why = r.slos.filter((s) => s.topReasons.length > 0);
  if (why.length > 0) {
    out.push("", "bad events (objective window), top reasons:");
    for (const s of why) {
      const total = s.windows[s.windows.length - 1]?.bad ?? 0;
      out.push(`  ${s.name}: ${count(total)} bad: ${s.topReasons.map((x) => `${count(x.events)} ${x.reason}`).join(", ")}`);
    }
  }
  return out.join("\n");
}

export const sloCommand: Command = {
  name: "slo",
  summary: "show the node's service-level objectives: SLIs over 1h/6h/window, error budget, burn rates, top reasons",
  usage: "berthctl slo [--address HOST:PORT] [-o table|json|yaml]\n\nReads /slo from berthd's metrics listener (--address, $BERTH_METRICS_ADDRESS, or metrics.address from the runtime's config).",
  async run(ctx) {
    let flag: string | undefined;
    for (let i = 0; i < ctx.args.length; i++) {
      const a = ctx.args[i] as string;
      if (a === "--address") {
        flag = ctx.args[++i];
        if (!flag) throw new UsageError("--address needs HOST:PORT");
      } else if (a.startsWith("--address=")) flag = a.slice("--address=".length);
      else throw new UsageError(`slo: unexpected argument "${a}"`);
    }
    const address = await metricsAddress(ctx, flag);
    const url = `http://${address}/slo`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(ctx.timeoutMs || 10_000) });
    } catch (err) {
      throw new Error(`cannot read ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }
    if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}: ${(await res.text()).trim()}`);
    const report = (await res.json()) as SloReport;
    if (ctx.output === "json") return ctx.out(toJson(report));
    if (ctx.output === "yaml") return ctx.out(toYaml(report));
    ctx.out(renderSloReport(report));
  },
};
