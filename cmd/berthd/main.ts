#!/usr/bin/env node
// berthd's entry point: makes sure node runs with the V8 heap flags berthd wants, then
// loads the daemon (cli.ts). The flags are applied here, by re-executing node with them,
// so that they hold however berthd is started (systemd unit, make run, the e2e harness,
// benchmarks, `node dist/cmd/berthd/main.js` by hand).

/**
 * V8's young generation starts with 1 MB semi-spaces and doubles them up to 16 MB each
 * once scavenges see many survivors, as module loading, an image pull or a burst of pod
 * starts do; the pages stay resident afterwards (measured: 16 MB at an idle start, 32 MB
 * after 100 pods). berthd's live heap is about 15 MB, so it keeps 1 MB semi-spaces. The
 * size is fixed when the heap is created: it has to be on node's command line
 * (v8.setFlagsFromString is too late, and --semi-space-growth-factor, which could be set
 * there, is reset to 2 by V8 whenever a worker thread starts). A --max-semi-space-size
 * given to node (command line or NODE_OPTIONS) is left as it is.
 */
const HEAP_FLAGS = ["--max-semi-space-size=1"];

/**
 * glibc gives threads up to 8 malloc arenas per CPU. A pull's worker threads each fill one
 * with buffers, and a minute after a 471 MB pull those arenas still held 10 to 25 MB
 * (PSS 45 -> 56..68 MB; with 2 arenas, 45 -> 45..46 MB). The cap has to be in place when
 * the process starts: glibc fixes the limit the first time a thread needs an arena, and
 * node's own threads do that before any of berthd's code runs (mallopt(M_ARENA_MAX) from
 * the daemon left 6 arenas). So it rides on the re-exec, as MALLOC_ARENA_MAX, unless the
 * environment already sets it; berthd then takes it out of its environment again, so that
 * runc, conmon and CNI plugins start with the environment berthd was given.
 */
const MALLOC_ARENAS = "2";
/** Names of the variables the re-exec added (comma-separated), to be taken out after it. */
const ADDED_ENV = "BERTH_REEXEC_ADDED_ENV";

const given = [...process.execArgv, process.env["NODE_OPTIONS"] ?? ""].join(" ");
if (!given.includes("--max-semi-space-size")) {
  const { reexecNodeWith } = await import("../../pkg/sys/index.js");
  const env: Record<string, string> = {};
  if (process.env["MALLOC_ARENA_MAX"] === undefined && !/glibc\.malloc\.arena_max/.test(process.env["GLIBC_TUNABLES"] ?? "")) {
    env["MALLOC_ARENA_MAX"] = MALLOC_ARENAS;
    env[ADDED_ENV] = "MALLOC_ARENA_MAX";
  }
  try {
    reexecNodeWith(HEAP_FLAGS, env);
  } catch (err) {
    process.stderr.write(`berthd: cannot restart node with ${HEAP_FLAGS.join(" ")} (${(err as Error).message}); running with node's default heap sizes and malloc arenas\n`);
  }
}
for (const name of (process.env[ADDED_ENV] ?? "").split(",")) if (name !== "") delete process.env[name];
delete process.env[ADDED_ENV];
await import("./cli.js");
