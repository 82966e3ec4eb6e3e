// Pull benchmark, berthd side by side with Debian's containerd 1.6.
//
// The image is issue 9's: 5 layers, about 532 MB unpacked. Its files are real files
// sampled from the host's /usr (every k-th regular file below 32 MiB in sorted path
// order, k chosen to reach --mb), gzipped at level 6 as registries' builders do, so the
// gzip ratio is that of real binaries, libraries and text (about 3; printed). The
// image is built once and cached in $TMPDIR/berth-bench-pull-<mb>mb-<layers>l.
//
// Each run starts a fresh berthd (temp root) and a fresh containerd (temp root, the
// local registry as its plain-HTTP mirror; the two alternate in going first, and the
// registry's blobs are read once before each pull so both find them cached), pulls the image
// with each while calling ListImages every 20 ms, and records wall time and the
// ListImages p50/p99 during the pull; for berthd also its event-loop delay p99 (its
// /metrics) and its PSS (/proc/PID/smaps_rollup) idle before the pull, right after it
// and --settle seconds later. Medians over --runs are printed as a table.
//
//   npx tsc && node dist/hack/bench/pull.js [--mb 532] [--layers 5] [--runs 3] [--settle 60] [--no-containerd] [--berth-toml 'TOML']
//
// Figures only; nothing is asserted. The machine is shared: compare medians.

import { mkdtempSync, readdirSync, readFileSync, rmSync, lstatSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CriClient } from "../../pkg/cri/index.js";
import { buildImage, buildLayer, OciLayout, pushFromLayout, withParentDirs, DEFAULT_PATH, type LayerEntry, type LayerSpec } from "../images/index.js";
import { removeDirs, startDaemon } from "../../test-e2e/harness/daemon.js";
import { startRegistry } from "../../test-e2e/harness/registry.js";
import { cpuSeconds, pssBytes, schedStat, startContainerdForPull, threadCount } from "./pull-containerd.js";

const MiB = 1024 * 1024;

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

const median = (xs: readonly number[]): number => quantile(xs.filter((x) => Number.isFinite(x)), 0.5);

/** One metric of berthd's /metrics; NaN when the scrape fails (a keep-alive connection the server closed meanwhile: undici answers "other side closed"). */
async function scrape(url: string, name: string): Promise<number> {
  try {
    const text = await (await fetch(url)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(" ")[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Regular files below `dir` (sorted by path), with sizes; unreadable entries are skipped. */
function walkFiles(dir: string, out: Array<{ path: string; size: number }>): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const n of names) {
    const p = `${dir}/${n}`;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) walkFiles(p, out);
    else if (st.isFile() && st.size > 0 && st.size < 32 * MiB) out.push({ path: p, size: st.size });
  }
}

interface BuiltInfo {
  layout: string;
  layers: number;
  files: number;
  tarBytes: number;
  blobBytes: number;
}

async function buildHostImage(mb: number, layers: number): Promise<BuiltInfo> {
  const dir = join(tmpdir(), `berth-bench-pull-${mb}mb-${layers}l`);
  const infoFile = join(dir, "info.json");
  if (existsSync(infoFile)) return JSON.parse(readFileSync(infoFile, "utf8")) as BuiltInfo;
  process.stderr.write(`building the pull image (${mb} MB of host /usr files, ${layers} layers) in ${dir} …\n`);
  const all: Array<{ path: string; size: number }> = [];
  walkFiles("/usr", all);
  const total = all.reduce((a, f) => a + f.size, 0);
  const target = mb * 1e6;
  const stride = Math.max(1, Math.floor(total / target));
  const picked: Array<{ path: string; size: number }> = [];
  let bytes = 0;
  for (let i = 0; i < all.length && bytes < target; i += stride) {
    const f = all[i] as { path: string; size: number };
    picked.push(f);
    bytes += f.size;
  }
  picked.sort((a, b) => (a.path < b.path ? -1 : 1));
  const per = bytes / layers;
  const groups: Array<Array<{ path: string; size: number }>> = Array.from({ length: layers }, () => []);
  let acc = 0;
  for (const f of picked) {
    (groups[Math.min(layers - 1, Math.floor(acc / per))] as Array<{ path: string; size: number }>).push(f);
    acc += f.size;
  }
  const layout = await OciLayout.open(join(dir, "image"));
  let tarBytes = 0;
  let blobBytes = 0;
  const specs: LayerSpec[] = groups.map((g, i) => ({
    build: async () => {
      const entries: LayerEntry[] = [];
      for (const f of g) {
        let content: Buffer;
        try {
          content = readFileSync(f.path);
        } catch {
          continue;
        }
        entries.push({ type: "file", path: f.path.slice(1), content, mode: lstatSync(f.path).mode & 0o7777 });
      }
      const built = await buildLayer(withParentDirs(entries), { gzipLevel: 6 });
      tarBytes += built.tarSize;
      blobBytes += built.blob.length;
      process.stderr.write(`  layer ${i}: ${g.length} files, ${(built.tarSize / 1e6).toFixed(1)} MB tar, ${(built.blob.length / 1e6).toFixed(1)} MB gzip\n`);
      return built;
    },
    createdBy: `COPY host /usr sample part ${i}`,
  }));
  const built = await buildImage(layout, { layers: specs, config: { Env: [DEFAULT_PATH], Cmd: ["/bin/sh"] } });
  if (built.kind !== "image") throw new Error("expected an image");
  layout.tag(built.manifest, "latest");
  await layout.save();
  const info: BuiltInfo = { layout: layout.dir, layers, files: picked.length, tarBytes, blobBytes };
  writeFileSync(infoFile, JSON.stringify(info));
  return info;
}

interface Probe {
  stop(): Promise<number[]>;
}

/** Calls ListImages every 20 ms until stopped; returns the latencies (ms). */
function probe(client: CriClient): Probe {
  const lat: number[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const t = performance.now();
      await client.image.listImages({});
      lat.push(performance.now() - t);
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return lat;
    },
  };
}

interface RunFigures {
  wall: number;
  p50: number;
  p99: number;
  lagP99?: number;
  /** CPU seconds the daemon used during the pull. */
  cpu?: number;
  /** The event-loop thread: ms it ran, ms it waited runnable for a CPU, and per time slice. */
  loopRunMs?: number;
  loopWaitMs?: number;
  loopWaitPerSliceMs?: number;
  pssIdle?: number;
  pssAfter?: number;
  pssSettled?: number;
  threadsAfter?: number;
  threadsSettled?: number;
}

async function runBerth(registryHost: string, image: string, settle: number, extraToml: string): Promise<RunFigures> {
  const d = await startDaemon({ configToml: `${extraToml}\n[image.registries."${registryHost}"]\nplain_http = true\n`, logLevel: "info" });
  try {
    const pid = d.process.pid as number;
    const addr = d.metricsUrl();
    await d.client.image.listImages({});
    await sleep(2000);
    const pssIdle = pssBytes(pid);
    await scrape(addr, "berth_nodejs_eventloop_lag_p99_seconds"); // resets the window
    const lagSamples: number[] = [];
    const lagTimer = setInterval(() => {
      void scrape(addr, "berth_nodejs_eventloop_lag_p99_seconds").then((v) => lagSamples.push(v * 1000));
    }, 1000);
    const p = probe(d.client);
    const cpu0 = cpuSeconds(pid);
    const sched0 = schedStat(pid);
    const t0 = performance.now();
    await d.client.image.pullImage({ image: { image } }, { timeoutMs: 600_000 });
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(pid) - cpu0;
    const sched1 = schedStat(pid);
    const lat = await p.stop();
    clearInterval(lagTimer);
    lagSamples.push((await scrape(addr, "berth_nodejs_eventloop_lag_p99_seconds")) * 1000);
    // per layer, from berthd's "layer applied" log lines
    const layers = d
      .output()
      .split("\n")
      .filter((l) => l.includes('"layer applied"'))
      .map((l) => JSON.parse(l) as { extractMs: number; syncMs?: number; totalMs: number; waitedMs: number; entries: number });
    const pssAfter = pssBytes(pid);
    const threadsAfter = threadCount(pid);
    await sleep(settle * 1000);
    const pssSettled = pssBytes(pid);
    const threadsSettled = threadCount(pid);
    console.log(`  layers (extract / syncfs / total / waited before commit, ms): ${layers.map((l) => `${l.extractMs}/${l.syncMs ?? "-"}/${l.totalMs}/${l.waitedMs}`).join("  ")}`);
    return {
      wall,
      p50: quantile(lat, 0.5),
      p99: quantile(lat, 0.99),
      lagP99: Math.max(...lagSamples.filter((x) => Number.isFinite(x))),
      cpu,
      loopRunMs: (sched1.runNs - sched0.runNs) / 1e6,
      loopWaitMs: (sched1.waitNs - sched0.waitNs) / 1e6,
      loopWaitPerSliceMs: (sched1.waitNs - sched0.waitNs) / 1e6 / Math.max(1, sched1.slices - sched0.slices),
      pssIdle,
      pssAfter,
      pssSettled,
      threadsAfter,
      threadsSettled,
    };
  } finally {
    await d.stop();
    removeDirs(d.dirs);
  }
}

async function runContainerd(registryHost: string, image: string): Promise<RunFigures> {
  const base = mkdtempSync(join(tmpdir(), "berth-bench-pull-ctrd-"));
  const c = await startContainerdForPull(base, registryHost);
  const client = new CriClient(c.socket, { defaultTimeoutMs: 600_000 });
  try {
    await client.image.listImages({});
    await sleep(1000);
    const p = probe(client);
    const t0 = performance.now();
    await client.image.pullImage({ image: { image } }, { timeoutMs: 600_000 });
    const wall = (performance.now() - t0) / 1000;
    const lat = await p.stop();
    return { wall, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99) };
  } finally {
    client.close();
    await c.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

/** Reads every blob of the image from the registry once, so each pull finds them in the page cache (no runtime pays for cold reads). */
async function warmRegistry(registryUrl: string, digests: readonly string[]): Promise<void> {
  for (const d of digests) {
    const res = await fetch(`${registryUrl}/v2/pullbench/blobs/${d}`);
    if (!res.ok || !res.body) throw new Error(`warming blob ${d}: HTTP ${res.status}`);
    for await (const _ of res.body) {
      // discard
    }
  }
}

const fmtMs = (x: number): string => `${x.toFixed(1)} ms`;
const fmtS = (x: number): string => `${x.toFixed(2)} s`;
const fmtMB = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? "-" : `${(x / MiB).toFixed(1)} MiB`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mb: { type: "string", default: "532" },
      layers: { type: "string", default: "5" },
      runs: { type: "string", default: "3" },
      settle: { type: "string", default: "60" },
      "no-containerd": { type: "boolean", default: false },
      "no-berth": { type: "boolean", default: false },
      /** TOML added to berthd's config, e.g. "[grpc]\nevent_loop_nice = 0" (\n as two characters is a newline). */
      "berth-toml": { type: "string", default: "" },
    },
  });
  const runs = Number(values.runs);
  const settle = Number(values.settle);
  const info = await buildHostImage(Number(values.mb), Number(values.layers));
  console.log(
    `image: ${info.layers} layers, ${info.files} files sampled from /usr, ${(info.blobBytes / 1e6).toFixed(1)} MB gzip (level 6) / ${(info.tarBytes / 1e6).toFixed(1)} MB tar, ratio ${(info.tarBytes / info.blobBytes).toFixed(2)}`,
  );
  const reg = await startRegistry();
  const berth: RunFigures[] = [];
  const ctrd: RunFigures[] = [];
  try {
    const pushed = await pushFromLayout(info.layout, "latest", reg.host, "pullbench", "latest");
    const manifest = (await (await fetch(`${reg.url}/v2/pullbench/manifests/${pushed.manifestDigest}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).json()) as {
      config: { digest: string };
      layers: Array<{ digest: string }>;
    };
    const digests = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    const image = `${reg.host}/pullbench:latest`;
    for (let run = 1; run <= runs; run++) {
      // the machine's load drifts: alternate which runtime goes first
      const order = run % 2 === 1 ? ["berth", "containerd"] : ["containerd", "berth"];
      for (const who of order) {
        if (who === "berth" && !values["no-berth"]) {
          await warmRegistry(reg.url, digests);
          const b = await runBerth(reg.host, image, settle, (values["berth-toml"] ?? "").replaceAll("\\n", "\n"));
          berth.push(b);
          console.log(
            `run ${run} berth:      wall ${fmtS(b.wall)}, ListImages p50 ${fmtMs(b.p50)} p99 ${fmtMs(b.p99)}, event loop p99 ${fmtMs(b.lagP99 ?? NaN)}, CPU ${fmtS(b.cpu ?? NaN)}, event loop ran ${fmtMs(b.loopRunMs ?? NaN)} waited ${fmtMs(b.loopWaitMs ?? NaN)} (${(b.loopWaitPerSliceMs ?? NaN).toFixed(2)} ms a slice), PSS idle ${fmtMB(b.pssIdle)} after ${fmtMB(b.pssAfter)} +${settle}s ${fmtMB(b.pssSettled)}, threads after ${b.threadsAfter} +${settle}s ${b.threadsSettled}`,
          );
        }
        if (who === "containerd" && !values["no-containerd"]) {
          await warmRegistry(reg.url, digests);
          const c = await runContainerd(reg.host, image);
          ctrd.push(c);
          console.log(`run ${run} containerd: wall ${fmtS(c.wall)}, ListImages p50 ${fmtMs(c.p50)} p99 ${fmtMs(c.p99)}`);
        }
      }
    }
  } finally {
    await reg.stop();
  }
  const m = (xs: RunFigures[], k: keyof RunFigures): number => median(xs.map((x) => x[k] as number));
  const row = (name: string, b: string, c: string, ratio: string, goal: string): string => `${name.padEnd(34)} ${b.padStart(11)} ${c.padStart(11)} ${ratio.padStart(7)}  ${goal}`;
  const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? (a / b).toFixed(2) : "-");
  console.log(`\nmedians of ${runs} run(s)`);
  console.log(row("figure", "berth", "containerd", "ratio", "goal"));
  console.log(row("pull + unpack wall time", fmtS(m(berth, "wall")), fmtS(m(ctrd, "wall")), ratio(m(berth, "wall"), m(ctrd, "wall")), "≤ 0.7× containerd"));
  console.log(row("ListImages p50 during the pull", fmtMs(m(berth, "p50")), fmtMs(m(ctrd, "p50")), ratio(m(berth, "p50"), m(ctrd, "p50")), ""));
  console.log(row("ListImages p99 during the pull", fmtMs(m(berth, "p99")), fmtMs(m(ctrd, "p99")), ratio(m(berth, "p99"), m(ctrd, "p99")), "≤ 10 ms"));
  console.log(row("berthd event-loop delay p99", fmtMs(m(berth, "lagP99")), "-", "", ""));
  console.log(row("berthd CPU during the pull", fmtS(m(berth, "cpu")), "-", "", ""));
  console.log(row("event loop waiting for a CPU / slice", fmtMs(m(berth, "loopWaitPerSliceMs")), "-", "", ""));
  console.log(row("berthd PSS idle", fmtMB(m(berth, "pssIdle")), "-", "", ""));
  console.log(row("berthd PSS right after the pull", fmtMB(m(berth, "pssAfter")), "-", "", ""));
  console.log(row(`berthd PSS ${settle} s after the pull`, fmtMB(m(berth, "pssSettled")), "-", ratio(m(berth, "pssSettled"), m(berth, "pssIdle")), "within 10% of idle"));
  console.log(row(`berthd threads after / +${settle} s`, `${m(berth, "threadsAfter")}/${m(berth, "threadsSettled")}`, "-", "", ""));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
