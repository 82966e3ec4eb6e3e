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

const given = [...process.execArgv, process.env["NODE_OPTIONS"] ?? ""].join(" ");
if (!given.includes("--max-semi-space-size")) {
  const { reexecNodeWith } = await import("../../pkg/sys/index.js");
  try {
    reexecNodeWith(HEAP_FLAGS);
  } catch (err) {
    process.stderr.write(`berthd: cannot restart node with ${HEAP_FLAGS.join(" ")} (${(err as Error).message}); running with node's default heap sizes\n`);
  }
}
await import("./cli.js");
