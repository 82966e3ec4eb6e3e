import {
  NamespaceMode,
  PodSandboxConfig,
  PodSandboxState,
  Protocol,
  type PodSandbox,
  type PodSandboxStatus,
  type DeepPartial,
} from "../../api/gen/cri/v1/api.js";
import { InvalidArgumentError } from "../errdefs/index.js";
import type { Sandbox, SandboxSpec } from "../runtime/index.js";

const PROTOCOLS: Record<number, string> = { [Protocol.TCP]: "tcp", [Protocol.UDP]: "udp", [Protocol.SCTP]: "sctp" };

/** Translates a RunPodSandbox request into the runtime's spec (validation of CRI shape happens here). */
export function sandboxSpecOf(config: PodSandboxConfig | undefined, runtimeHandler: string): SandboxSpec {
  if (!config) throw new InvalidArgumentError("RunPodSandbox: config is required");
  const md = config.metadata;
  if (!md) throw new InvalidArgumentError("RunPodSandbox: config.metadata is required");
  for (const [field, v] of [["name", md.name], ["namespace", md.namespace], ["uid", md.uid]] as const) {
    if (!v) throw new InvalidArgumentError(`RunPodSandbox: config.metadata.${field} is required`);
  }
  const ns = config.linux?.securityContext?.namespaceOptions;
  const net = ns?.network ?? NamespaceMode.POD;
  const pid = ns?.pid ?? NamespaceMode.POD;
  const ipc = ns?.ipc ?? NamespaceMode.POD;
  if (pid === NamespaceMode.TARGET) throw new InvalidArgumentError("RunPodSandbox: namespace_options.pid TARGET is only valid for containers");
  if (ns?.usernsOptions && ns.usernsOptions.mode === NamespaceMode.POD) {
    throw new InvalidArgumentError("RunPodSandbox: user namespaces (namespace_options.userns_options.mode POD) are not supported");
  }
  const portMappings = config.portMappings.map((p, i) => {
    const protocol = PROTOCOLS[p.protocol];
    if (!protocol) throw new InvalidArgumentError(`RunPodSandbox: port_mappings[${i}].protocol ${p.protocol} is unknown`);
    return { hostPort: p.hostPort, containerPort: p.containerPort, protocol, hostIP: p.hostIp };
  });
  const dns = config.dnsConfig ? { servers: [...config.dnsConfig.servers], searches: [...config.dnsConfig.searches], options: [...config.dnsConfig.options] } : undefined;
  return {
    name: md.name,
    namespace: md.namespace,
    uid: md.uid,
    attempt: md.attempt,
    hostname: config.hostname,
    logDirectory: config.logDirectory,
    dns,
    // Host-port mappings make no sense without a pod network namespace.
    portMappings: net === NamespaceMode.NODE ? [] : portMappings.filter((p) => p.hostPort > 0),
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    hostNetwork: net === NamespaceMode.NODE,
    hostIpc: ipc === NamespaceMode.NODE,
    pidMode: pid === NamespaceMode.NODE ? "host" : pid === NamespaceMode.CONTAINER ? "container" : "pod",
    sysctls: { ...(config.linux?.sysctls ?? {}) },
    cgroupParent: config.linux?.cgroupParent ?? "",
    runtimeHandler,
    config: PodSandboxConfig.toJSON(config) as Record<string, unknown>,
  };
}

export function criState(sb: Sandbox): PodSandboxState {
  return sb.state === "ready" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;
}

function metadataOf(sb: Sandbox): PodSandbox["metadata"] {
  return { name: sb.name, namespace: sb.namespace, uid: sb.uid, attempt: sb.attempt };
}

export function podSandboxOf(sb: Sandbox): DeepPartial<PodSandbox> {
  return {
    id: sb.id,
    metadata: metadataOf(sb),
    state: criState(sb),
    createdAt: sb.createdAt,
    labels: sb.labels,
    annotations: sb.annotations,
    runtimeHandler: sb.runtimeHandler,
  };
}

export function podSandboxStatusOf(sb: Sandbox): DeepPartial<PodSandboxStatus> {
  const [primary, ...rest] = sb.state === "ready" ? sb.ips : [];
  return {
    id: sb.id,
    metadata: metadataOf(sb),
    state: criState(sb),
    createdAt: sb.createdAt,
    network: { ip: primary ?? "", additionalIps: rest.map((ip) => ({ ip })) },
    linux: {
      namespaces: {
        options: {
          network: sb.hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD,
          pid: sb.hostPid ? NamespaceMode.NODE : sb.pidNsPath ? NamespaceMode.POD : NamespaceMode.CONTAINER,
          ipc: sb.hostIpc ? NamespaceMode.NODE : NamespaceMode.POD,
        },
      },
    },
    labels: sb.labels,
    annotations: sb.annotations,
    runtimeHandler: sb.runtimeHandler,
  };
}
