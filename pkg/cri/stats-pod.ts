import type { DeepPartial, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse, PodSandboxStatsRequest, PodSandboxStatsResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError, NotFoundError } from "../errdefs/index.js";
import type { UnaryImpl } from "./instrument.js";
import { matchLabels, toPodSandboxStats, type StatsProvider } from "./stats-convert.js";

/** PodSandboxStats: the cached figures of one pod and its containers. */
export function podSandboxStats(stats: StatsProvider): UnaryImpl<PodSandboxStatsRequest, DeepPartial<PodSandboxStatsResponse>> {
  return async (req) => {
    if (!req.podSandboxId) throw new InvalidArgumentError("PodSandboxStats: pod_sandbox_id is empty");
    const s = stats.sandbox(req.podSandboxId);
    if (!s) throw new NotFoundError(`pod sandbox "${req.podSandboxId}" not found`);
    return { stats: toPodSandboxStats(s) };
  };
}

/** ListPodSandboxStats: every pod matching the filter (id, labels), from the cache. */
export function listPodSandboxStats(stats: StatsProvider): UnaryImpl<ListPodSandboxStatsRequest, DeepPartial<ListPodSandboxStatsResponse>> {
  return async (req) => {
    const f = req.filter;
    if (f?.id) {
      const s = stats.sandbox(f.id);
      return { stats: s && matchLabels(s.info.labels, f.labelSelector) ? [toPodSandboxStats(s)] : [] };
    }
    return { stats: stats.sandboxes().filter((s) => matchLabels(s.info.labels, f?.labelSelector)).map(toPodSandboxStats) };
  };
}
