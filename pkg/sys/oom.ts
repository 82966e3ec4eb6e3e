import { readFileSync, writeFileSync } from "node:fs";

let cached: number | undefined;

/**
 * The lowest oom_score_adj a process started by berthd may ask for. Lowering
 * the value needs CAP_SYS_RESOURCE; where the host lacks it (as in some VMs and
 * nested containers) nothing below berthd's own value can be set, so requests
 * must be clamped to it or runc fails at create.
 */
export function oomScoreAdjFloor(): number {
  if (cached !== undefined) return cached;
  const own = Number(readFileSync("/proc/self/oom_score_adj", "utf8").trim());
  if (own <= -1000) {
    cached = -1000;
    return cached;
  }
  try {
    writeFileSync("/proc/self/oom_score_adj", String(own - 1));
    writeFileSync("/proc/self/oom_score_adj", String(own));
    cached = -1000;
  } catch {
    cached = own;
  }
  return cached;
}
