// Read latency right after the idle compactor ran: berthd with N pods, a warm ListContainers
// loop, then a pod change and the compactor's quiet time, then the first calls one by one
// and the p50 of the next ones (the compactor drops compiled code not running at that moment,
// and the read path is compiled again on its next call).
//
//   node dist/hack/bench/after-compact.js [--pods 20] [--quiet-s 35] [-n 2000] [--berthd OTHER/dist/cmd/berthd/main.js]
// Figures only; nothing is asserted.

import { setTimeout as sleep } from "node:timers/promises";
import { CriClient } from "../../pkg/cri/index.js";
import { arg, benchEnv, berthTarget, pct, removePods, startPods } from "./side-by-side.js";

async function main(): Promise<void> {
  const podCount = Number(arg("--pods", "20"));
  const quietS = Number(arg("--quiet-s", "35"));
  const n = Number(arg("-n", "2000"));
  const env = await benchEnv();
  try {
    const other = arg("--berthd", "");
    const d = await env.startBerth("", [], other ? { berthd: other } : {});
    const t = berthTarget(env, d);
    const client = new CriClient(t.socket, { defaultTimeoutMs: 120_000 });
    const run = `${process.pid}-${Date.now().toString(36)}`;
    await client.image.pullImage({ image: { image: t.image } });
    const pods = await startPods(client, t, run, 0, podCount);
    const timed = async (): Promise<number> => {
      const t0 = performance.now();
      await client.runtime.listContainers({});
      return performance.now() - t0;
    };
    const series = async (label: string): Promise<void> => {
      const first: number[] = [];
      for (let i = 0; i < 5; i++) first.push(await timed());
      const rest: number[] = [];
      for (let i = 0; i < n; i++) rest.push(await timed());
      const p50s: string[] = [];
      for (let at = 0; at < n; at += n / 4) p50s.push(pct(rest.slice(at, at + n / 4), 50).toFixed(3));
      console.log(`${label}: first 5 calls ${first.map((x) => x.toFixed(2)).join(", ")} ms; p50 of calls 6.. in quarters of ${n / 4}: ${p50s.join(", ")} ms`);
    };
    await series("warm-up");
    await series("warm");
    // A pod change arms the compactor; after its quiet time it has run.
    const extra = await startPods(client, t, `${run}-x`, podCount, podCount + 1);
    await sleep(quietS * 1000);
    await series(`after the compactor (${quietS} s after a pod start)`);
    await series("then");
    await removePods(client, [...pods, ...extra]);
    client.close();
  } finally {
    await env.close();
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
