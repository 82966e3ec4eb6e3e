import type { CriDeps } from "./deps.js";
import type { RuntimeImpls } from "./impls.js";
import { version } from "./runtime-version.js";
import { status } from "./runtime-status.js";
import { runtimeConfig } from "./runtime-config.js";
import { runPodSandbox } from "./sandbox-run.js";
import { stopPodSandbox } from "./sandbox-stop.js";
import { removePodSandbox } from "./sandbox-remove.js";
import { podSandboxStatus } from "./sandbox-status.js";
import { listPodSandbox } from "./sandbox-list.js";
import { createContainer } from "./container-create.js";
import { startContainer } from "./container-start.js";
import { stopContainer } from "./container-stop.js";
import { removeContainer } from "./container-remove.js";
import { containerStatus } from "./container-status.js";
import { listContainers } from "./container-list.js";
import { execSync } from "./container-exec-sync.js";
import { reopenContainerLog } from "./container-reopen-log.js";
import { containerStats, listContainerStats } from "./stats-container.js";
import { podSandboxStats, listPodSandboxStats } from "./stats-pod.js";
import { listMetricDescriptors, listPodSandboxMetrics } from "./stats-metrics.js";
import { getContainerEvents } from "./events-get.js";
import { podSandboxStatusOf } from "./sandbox-convert.js";
import { containerStatusOf } from "./container-convert.js";
import { updateContainerResources } from "./container-update.js";
import { exec } from "./container-exec.js";
import { attach } from "./container-attach.js";
import { portForward } from "./sandbox-port-forward.js";
import { updatePodSandboxResources } from "./sandbox-update-resources.js";
import { checkpointContainer } from "./container-checkpoint.js";
import { updateRuntimeConfig, type PushedRuntimeConfig } from "./runtime-update-config.js";
import { streamContainers, streamContainerStats, streamPodSandboxes, streamPodSandboxMetrics, streamPodSandboxStats } from "./runtime-list-stream.js";

/** The RuntimeService methods berth implements; the rest answer UNIMPLEMENTED. */
export function runtimeHandlers(deps: CriDeps): RuntimeImpls {
  const pushed: PushedRuntimeConfig = { podCidrs: [] };
  return {
    version: version(),
    status: status(deps, pushed),
    runtimeConfig: runtimeConfig(deps),
    runPodSandbox: runPodSandbox(deps),
    stopPodSandbox: stopPodSandbox(deps),
    removePodSandbox: removePodSandbox(deps),
    podSandboxStatus: podSandboxStatus(deps),
    listPodSandbox: listPodSandbox(deps),
    createContainer: createContainer(deps),
    startContainer: startContainer(deps),
    stopContainer: stopContainer(deps),
    removeContainer: removeContainer(deps),
    containerStatus: containerStatus(deps),
    listContainers: listContainers(deps),
    execSync: execSync(deps),
    reopenContainerLog: reopenContainerLog(deps),
    containerStats: containerStats(deps.stats),
    listContainerStats: listContainerStats(deps.stats),
    podSandboxStats: podSandboxStats(deps.stats),
    listPodSandboxStats: listPodSandboxStats(deps.stats),
    listMetricDescriptors: listMetricDescriptors(),
    listPodSandboxMetrics: listPodSandboxMetrics(deps.stats),
    getContainerEvents: getContainerEvents(deps.events, { converters: { podStatus: podSandboxStatusOf, containerStatus: containerStatusOf }, lifetime: deps.lifetime }),
    updateContainerResources: updateContainerResources(deps),
    exec: exec(deps),
    attach: attach(deps),
    portForward: portForward(deps),
    updatePodSandboxResources: updatePodSandboxResources(deps),
    checkpointContainer: checkpointContainer(deps),
    updateRuntimeConfig: updateRuntimeConfig(deps, pushed),
    streamPodSandboxes: streamPodSandboxes(deps),
    streamContainers: streamContainers(deps),
    streamContainerStats: streamContainerStats(deps),
    streamPodSandboxStats: streamPodSandboxStats(deps),
    streamPodSandboxMetrics: streamPodSandboxMetrics(deps),
  };
}
