// Runs issue 9's four side-by-side benchmarks in one go on this machine (api-latency,
// memory, lifecycle, pull; each starts its own berthd and Debian containerd on the same
// local registry and CNI network) and then prints every figure that has a goal, in one
// table: the run the "done when" asks for. Each benchmark's full output is
// printed as it runs. Options are passed through with --api/--api-go/--memory/--lifecycle/--pull
// (e.g. --lifecycle "-n 30 -c 1"); the machine should be otherwise idle.
import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { arg } from "./side-by-side.js";

const HERE = dirname(fileURLToPath(import.meta.url));

const BENCHES: Array<{ name: string; file: string; defaults: string; key?: string }> = [
  { name: "api-latency", file: "api-latency.js", defaults: "--pods 0,50,100 -n 1500" },
  // The same calls made by a Go client (grpc-go, as the kubelet and crictl are).
  { name: "api-latency-go", file: "api-latency.js", defaults: "--go --pods 0,50,100 -n 1500", key: "api-go" },
  { name: "memory", file: "memory.js", defaults: "--pods 50,100 --settle 60" },
  { name: "lifecycle", file: "lifecycle.js", defaults: "-n 20 -c 1,4" },
  { name: "pull", file: "pull.js", defaults: "--runs 3 --settle 60" },
];

function runBench(file: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(HERE, file), ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      process.stdout.write(b);
      out += b.toString();
    });
    child.on("close", (code) => resolve({ code, out }));
  });
}

const GOAL = /(<=|≤|keep|within \d+%)/;

async function main(): Promise<void> {
  const only = arg("--only", "");
  const rows: string[] = [];
  const started = new Date();
  console.log(`issue 9 benchmarks, ${started.toISOString()}, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  for (const b of BENCHES) {
    if (only && !only.split(",").includes(b.name)) continue;
    const extra = arg(`--${b.key ?? b.name.split("-")[0]}`, b.defaults).split(" ").filter(Boolean);
    console.log(`\n######## ${b.name} ${extra.join(" ")}  (load average ${loadavg()[0]?.toFixed(2)})`);
    const { code, out } = await runBench(b.file, extra);
    if (code !== 0) rows.push(`  ${b.name}: exited with ${code}`);
    // Rows of the berth/containerd tables whose goal column is filled.
    for (const line of out.split("\n")) if (GOAL.test(line) && !/\bgoal\s*$/.test(line)) rows.push(`  [${b.name}] ${line.trim()}`);
  }
  console.log(`\n######## goals (${started.toISOString()} – ${new Date().toISOString()}, load average now ${loadavg().map((l) => l.toFixed(2)).join(" ")})`);
  for (const r of rows) console.log(r);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
