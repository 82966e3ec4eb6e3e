import { InvalidArgumentError } from "../errdefs/index.js";
import type { CniBandwidth } from "./network.js";

const INGRESS = "kubernetes.io/ingress-bandwidth";
const EGRESS = "kubernetes.io/egress-bandwidth";
/** Burst when only a rate is given: effectively unlimited, as other runtimes do. */
const DEFAULT_BURST = 2147483647;

const SUFFIX: Record<string, number> = {
  "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes quantity ("10M", "1Gi", "500k") as a number (bits per second here). */
function quantity(key: string, v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(k|[KMGTPE]i|[MGTPE]|)$/.exec(v.trim());
  const mult = m ? SUFFIX[m[2] ?? ""] : undefined;
  if (!m || mult === undefined) throw new InvalidArgumentError(`annotation ${key}: "${v}" is not a bandwidth quantity (e.g. 10M)`);
  const n = Math.round(Number(m[1]) * mult);
  if (n <= 0) throw new InvalidArgumentError(`annotation ${key}: "${v}" must be positive`);
  return n;
}

/** The `bandwidth` capability argument from the pod's annotations; undefined when none is set. */
export function parseBandwidth(annotations: Record<string, string>): CniBandwidth | undefined {
  const out: CniBandwidth = {};
  const ing = annotations[INGRESS];
  const eg = annotations[EGRESS];
  if (ing !== undefined) {
    out.ingressRate = quantity(INGRESS, ing);
    out.ingressBurst = DEFAULT_BURST;
  }
  if (eg !== undefined) {
    out.egressRate = quantity(EGRESS, eg);
    out.egressBurst = DEFAULT_BURST;
  }
  return Object.keys(out).length ? out : undefined;
}
