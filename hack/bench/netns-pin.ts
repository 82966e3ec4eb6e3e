// Namespace pinning of RunPodSandbox, in-process against the process way.
//
//   node dist/hack/bench/netns-pin.js [-n 30]
//
// Each round pins new net/uts/ipc namespaces in a temp dir with the hostname set
// and loopback up, twice: with pkg/netns's pinNamespaces (unshare/setns/mount/
// sethostname/ioctl on berthd's thread) and with the command berth ran before
// (`unshare --net=F --uts=F --ipc=F -- sh -c 'hostname H; ip link set lo up'`),
// alternating. Prints p50/p90 of each. Root only. Figures only; nothing is asserted.

import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensurePrivateDir, pinNamespaces, unpinNamespaces } from "../../pkg/netns/index.js";
import { run, unmountAll } from "../../pkg/sys/index.js";
import { arg, pct } from "./side-by-side.js";

const KINDS = ["net", "uts", "ipc"] as const;

async function main(): Promise<void> {
  const n = Number(arg("-n", "30"));
  const root = mkdtempSync(join(tmpdir(), "berth-bench-pin-"));
  await ensurePrivateDir(root);
  const inProcess: number[] = [];
  const processes: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      let dir = join(root, `a${i}`);
      let t = performance.now();
      await pinNamespaces(dir, KINDS, "bench-pod");
      inProcess.push(performance.now() - t);
      await unpinNamespaces(dir);

      dir = join(root, `b${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o711 });
      for (const k of KINDS) closeSync(openSync(join(dir, k), "a", 0o444));
      t = performance.now();
      await run("unshare", [...KINDS.map((k) => `--${k}=${join(dir, k)}`), "--", "sh", "-c", 'hostname "$1"; ip link set lo up', "sh", "bench-pod"]);
      processes.push(performance.now() - t);
      await unpinNamespaces(dir);
    }
  } finally {
    await unmountAll(root);
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`pin net+uts+ipc, hostname, lo up (${n} rounds, alternating)`);
  console.log(`  in-process (syscalls)             p50 ${pct(inProcess, 50).toFixed(2).padStart(7)} ms   p90 ${pct(inProcess, 90).toFixed(2).padStart(7)} ms`);
  console.log(`  unshare + sh + hostname + ip      p50 ${pct(processes, 50).toFixed(2).padStart(7)} ms   p90 ${pct(processes, 90).toFixed(2).padStart(7)} ms`);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
