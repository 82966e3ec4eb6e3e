// Pull benchmark: builds the generated multi-layer "big" image (default ~300 MB),
// pushes it to a local registry, starts berthd (dist/) and pulls it while calling
// ListImages every 20 ms. Prints wall time, MB/s, berthd's event-loop delay p99
// during the pull (from its /metrics) and the p50/p99 latency of the ListImages calls.
//
//   npx tsc && node dist/hack/bench/pull.js [--mb 300] [--layers 6] [--runs 1]

import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildStandardImages, pushFromLayout } from "../images/index.js";
import { removeDirs, startDaemon } from "../../test-e2e/harness/daemon.js";
import { startRegistry } from "../../test-e2e/harness/registry.js";

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function scrape(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

async function buildBig(mb: number, layers: number): Promise<string> {
  const out = join(tmpdir(), `berth-bench-big-${mb}mb-${layers}l`);
  const marker = join(out, "big", "index.json");
  if (!existsSync(marker) || !readFileSync(marker, "utf8").includes("latest")) {
    process.stderr.write(`building the big image (${mb} MB, ${layers} layers) in ${out} …\n`);
    await buildStandardImages(out, { cacheDir: join(tmpdir(), "berth-test-images", "host-cache"), only: ["big"], bigMb: mb, bigLayers: layers });
  }
  return join(out, "big");
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mb: { type: "string", default: "300" }, layers: { type: "string", default: "6" }, runs: { type: "string", default: "1" } } });
  const mb = Number(values.mb);
  const layers = Number(values.layers);
  const runs = Number(values.runs);
  const layout = await buildBig(mb, layers);
  const reg = await startRegistry();
  try {
    const pushed = await pushFromLayout(layout, "latest", reg.host, "big", "latest");
    const manifest = (await (await fetch(`${reg.url}/v2/big/manifests/${pushed.manifestDigest}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).json()) as {
      layers: Array<{ size: number }>;
    };
    const blobBytes = manifest.layers.reduce((a, l) => a + l.size, 0);
    for (let run = 1; run <= runs; run++) {
      const d = await startDaemon({ configToml: `[image.registries."${reg.host}"]\nplain_http = true\n`, logLevel: "info" });
      try {
        const addr = d.metricsUrl();
        await scrape(addr, "berth_nodejs_eventloop_lag_p99_seconds"); // resets the window
        const lat: number[] = [];
        let pulling = true;
        const prober = (async () => {
          while (pulling) {
            const t = performance.now();
            await d.client.image.listImages({});
            lat.push(performance.now() - t);
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        const lagSamples: number[] = [];
        const lagTimer = setInterval(() => {
          void scrape(addr, "berth_nodejs_eventloop_lag_p99_seconds").then((v) => lagSamples.push(v * 1000));
        }, 1000);
        const t0 = performance.now();
        const res = await d.client.image.pullImage({ image: { image: `${reg.host}/big:latest` } }, { timeoutMs: 600_000 });
        const wall = (performance.now() - t0) / 1000;
        pulling = false;
        clearInterval(lagTimer);
        await prober;
        lagSamples.push((await scrape(addr, "berth_nodejs_eventloop_lag_p99_seconds")) * 1000);
        lat.sort((a, b) => a - b);
        const mbs = blobBytes / 1e6 / wall;
        const lagP99 = Math.max(...lagSamples.filter((x) => Number.isFinite(x)));
        console.log(
          [
            `run ${run}: pulled ${res.imageRef.slice(0, 19)}… ${(blobBytes / 1e6).toFixed(1)} MB in ${manifest.layers.length} layers`,
            `  wall time                 ${wall.toFixed(2)} s`,
            `  throughput                ${mbs.toFixed(1)} MB/s (compressed bytes / wall time, download + verify + unpack)`,
            `  berthd event-loop p99     ${lagP99.toFixed(1)} ms (max of 1 s windows)`,
            `  ListImages during pull    n=${lat.length} p50=${quantile(lat, 0.5).toFixed(2)} ms p99=${quantile(lat, 0.99).toFixed(2)} ms max=${(lat[lat.length - 1] ?? NaN).toFixed(2)} ms`,
          ].join("\n"),
        );
      } finally {
        await d.stop();
        removeDirs(d.dirs);
      }
    }
  } finally {
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
