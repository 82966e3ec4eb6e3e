import {
  Container,
  ContainerStats,
  PodSandbox,
  PodSandboxMetrics,
  PodSandboxStats,
  type DeepPartial,
  type StreamContainerStatsRequest,
  type StreamContainerStatsResponse,
  type StreamContainersRequest,
  type StreamContainersResponse,
  type StreamPodSandboxesRequest,
  type StreamPodSandboxesResponse,
  type StreamPodSandboxMetricsRequest,
  type StreamPodSandboxMetricsResponse,
  type StreamPodSandboxStatsRequest,
  type StreamPodSandboxStatsResponse,
} from "../../api/gen/cri/v1/api.js";
import type { CriDeps } from "./deps.js";
import type { StreamImpl } from "./instrument.js";
import { streamOf } from "./list-stream.js";
import { listPodSandboxItems } from "./sandbox-list.js";
import { listContainerItems } from "./container-list.js";
import { listContainerStats } from "./stats-container.js";
import { listPodSandboxStats } from "./stats-pod.js";
import { listPodSandboxMetrics } from "./stats-metrics.js";

// The CRI Stream* variants of the List* RPCs: same filters and items, sent in bounded chunks.

export function streamPodSandboxes(deps: CriDeps): StreamImpl<StreamPodSandboxesRequest, DeepPartial<StreamPodSandboxesResponse>> {
  return streamOf(
    listPodSandboxItems(deps),
    (req: StreamPodSandboxesRequest) => ({ filter: req.filter }),
    (res) => res.items,
    (podSandboxes) => ({ podSandboxes }),
    (it) => PodSandbox.encode(PodSandbox.fromPartial(it)).finish().length,
  );
}

export function streamContainers(deps: CriDeps): StreamImpl<StreamContainersRequest, DeepPartial<StreamContainersResponse>> {
  return streamOf(
    listContainerItems(deps),
    (req: StreamContainersRequest) => ({ filter: req.filter }),
    (res) => res.containers,
    (containers) => ({ containers }),
    (it) => Container.encode(Container.fromPartial(it)).finish().length,
  );
}

export function streamContainerStats(deps: CriDeps): StreamImpl<StreamContainerStatsRequest, DeepPartial<StreamContainerStatsResponse>> {
  return streamOf(
    listContainerStats(deps.stats),
    (req: StreamContainerStatsRequest) => ({ filter: req.filter }),
    (res) => res.stats,
    (containerStats) => ({ containerStats }),
    (it) => ContainerStats.encode(ContainerStats.fromPartial(it)).finish().length,
  );
}

export function streamPodSandboxStats(deps: CriDeps): StreamImpl<StreamPodSandboxStatsRequest, DeepPartial<StreamPodSandboxStatsResponse>> {
  return streamOf(
    listPodSandboxStats(deps.stats),
    (req: StreamPodSandboxStatsRequest) => ({ filter: req.filter }),
    (res) => res.stats,
    (podSandboxStats) => ({ podSandboxStats }),
    (it) => PodSandboxStats.encode(PodSandboxStats.fromPartial(it)).finish().length,
  );
}

export function streamPodSandboxMetrics(deps: CriDeps): StreamImpl<StreamPodSandboxMetricsRequest, DeepPartial<StreamPodSandboxMetricsResponse>> {
  return streamOf(
    listPodSandboxMetrics(deps.stats),
    () => ({}),
    (res) => res.podMetrics,
    (podSandboxMetrics) => ({ podSandboxMetrics }),
    (it) => PodSandboxMetrics.encode(PodSandboxMetrics.fromPartial(it)).finish().length,
  );
}
