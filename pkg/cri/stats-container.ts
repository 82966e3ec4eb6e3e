import type { ContainerStatsRequest, ContainerStatsResponse, DeepPartial, ListContainerStatsRequest, ListContainerStatsResponse } from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError, NotFoundError } from "../errdefs/index.js";
import type { UnaryImpl } from "./instrument.js";
import { matchLabels, toContainerStats, type StatsProvider } from "./stats-convert.js";

/** ContainerStats: the cached figures of one container. */
export function containerStats(stats: StatsProvider): UnaryImpl<ContainerStatsRequest, DeepPartial<ContainerStatsResponse>> {
  return async (req) => {
    if (!req.containerId) throw new InvalidArgumentError("ContainerStats: container_id is empty");
    const c = stats.container(req.containerId);
    if (!c) throw new NotFoundError(`container "${req.containerId}" not found`);
    return { stats: toContainerStats(c) };
  };
}

/** ListContainerStats: every container matching the filter (id, pod, labels), from the cache. */
export function listContainerStats(stats: StatsProvider): UnaryImpl<ListContainerStatsRequest, DeepPartial<ListContainerStatsResponse>> {
  return async (req) => {
    const f = req.filter;
    if (f?.id) {
      const c = stats.container(f.id);
      const ok = c && (!f.podSandboxId || c.info.podSandboxId === f.podSandboxId) && matchLabels(c.info.labels, f.labelSelector);
      return { stats: ok ? [toContainerStats(c)] : [] };
    }
    const list = stats.containers().filter((c) => (!f?.podSandboxId || c.info.podSandboxId === f.podSandboxId) && matchLabels(c.info.labels, f?.labelSelector));
    return { stats: list.map(toContainerStats) };
  };
}
