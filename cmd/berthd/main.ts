#!/usr/bin/env node
// berthd's entry point: sets the V8 heap flags that must hold before the daemon's
// modules are loaded, then loads the daemon (cli.ts). Doing it here rather than on the
// node command line makes it hold however berthd is started (systemd unit, make run,
// the e2e harness, benchmarks).
import { setFlagsFromString } from "node:v8";

/**
 * V8 doubles the young generation's semi-spaces (1 MB each at start) up to 16 MB each
 * as soon as a few scavenges see many survivors, as module loading and the first
 * bursts of CRI calls do; the pages stay resident after the burst. Keeping them at
 * their initial size saves about 6 MB of an idle berthd's PSS. The size itself
 * (--max-semi-space-size) is fixed when the heap is created; the growth factor is
 * read at each growth, so it is the one flag that can be set from here. A semi-space
 * flag given to node (command line or NODE_OPTIONS) is left to rule.
 */
function keepYoungGenerationSmall(): void {
  const given = [...process.execArgv, process.env["NODE_OPTIONS"] ?? ""].join(" ");
  if (/semi[-_]space/.test(given)) return;
  setFlagsFromString("--semi-space-growth-factor=1");
}

keepYoungGenerationSmall();
await import("./cli.js");
