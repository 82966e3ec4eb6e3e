import type { DeepPartial, ListMetricDescriptorsRequest, ListMetricDescriptorsResponse, ListPodSandboxMetricsRequest, ListPodSandboxMetricsResponse } from "../../api/gen/cri/v1/api.js";
import { METRIC_DESCRIPTORS, podMetrics } from "../stats/index.js";
import type { UnaryImpl } from "./instrument.js";
import { toMetricDescriptor, toPodSandboxMetrics, type StatsProvider } from "./stats-convert.js";

/** ListMetricDescriptors: the cAdvisor-named metrics ListPodSandboxMetrics reports. */
export function listMetricDescriptors(): UnaryImpl<ListMetricDescriptorsRequest, DeepPartial<ListMetricDescriptorsResponse>> {
  return async () => ({ descriptors: METRIC_DESCRIPTORS.map(toMetricDescriptor) });
}

/** ListPodSandboxMetrics: per pod its network metrics and per container cpu, memory, fs, process metrics. */
export function listPodSandboxMetrics(stats: StatsProvider): UnaryImpl<ListPodSandboxMetricsRequest, DeepPartial<ListPodSandboxMetricsResponse>> {
  return async () => {
    const now = BigInt(Date.now()) * 1_000_000n;
    return { podMetrics: stats.sandboxes().map((s) => toPodSandboxMetrics(podMetrics(s, now))) };
  };
}
