/**
 * The configuration schema: every key, its type, its default and its check.
 * A TOML file only overrides; any key it names must exist here.
 */

export type Node =
  | { kind: "string"; default: string; check?: (v: string) => string | undefined; doc: string }
  | { kind: "int"; default: number; min?: number; max?: number; doc: string }
  | { kind: "number"; default: number; min: number; max: number; doc: string }
  | { kind: "bool"; default: boolean; doc: string }
  | { kind: "strings"; default: string[]; doc: string }
  | { kind: "enum"; default: string; values: readonly string[]; doc: string }
  | { kind: "table"; fields: Record<string, Node>; doc?: string }
  | { kind: "map"; of: Record<string, Node>; default: Record<string, Record<string, unknown>>; doc: string };

const str = (def: string, doc: string, check?: (v: string) => string | undefined): Node =>
  check ? { kind: "string", default: def, doc, check } : { kind: "string", default: def, doc };
const int = (def: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): Node => ({ kind: "int", default: def, doc, min, max });
const num = (def: number, doc: string, min: number, max: number): Node => ({ kind: "number", default: def, doc, min, max });
const bool = (def: boolean, doc: string): Node => ({ kind: "bool", default: def, doc });
const strings = (def: string[], doc: string): Node => ({ kind: "strings", default: def, doc });
const oneOf = (def: string, values: readonly string[], doc: string): Node => ({ kind: "enum", default: def, values, doc });
const table = (fields: Record<string, Node>, doc?: string): Node => (doc ? { kind: "table", fields, doc } : { kind: "table", fields });

const absolute = (v: string): string | undefined => (v.startsWith("/") ? undefined : "must be an absolute path");
const absoluteOrEmpty = (v: string): string | undefined => (v === "" || v.startsWith("/") ? undefined : "must be an absolute path or empty");
const hostPort = (v: string): string | undefined => {
  if (v === "") return undefined;
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) return 'must be "host:port" (port 0 picks a free one) or empty to disable';
  return undefined;
};

export const schema: Record<string, Node> = {
  root: str("/var/lib/berth", "persistent data: content store, snapshots, metadata database", absolute),
  state: str("/run/berth", "ephemeral state: OCI bundles, pinned namespaces, monitor files", absolute),
  log_level: oneOf("info", ["fatal", "error", "warn", "info", "debug", "trace"], "log level of berthd"),
  grpc: table({
    address: str("/run/berth/berth.sock", "unix socket the CRI API is served on", absolute),
    server: oneOf(
      "berth",
      ["berth", "grpc-js"],
      "gRPC server on the socket: berth's own HTTP/2 server (a fraction of the CPU per call), or grpc-js over Node's http2",
    ),
    socket_mode: str("0660", "permission bits of the socket", (v) => (/^0?[0-7]{3}$/.test(v) ? undefined : 'must be octal such as "0660"')),
    max_recv_message_size: int(16 * 1024 * 1024, "largest request accepted, bytes", 1024),
    max_send_message_size: int(16 * 1024 * 1024, "largest response sent, bytes", 1024),
    shutdown_grace_seconds: int(30, "how long SIGTERM waits for in-flight calls", 0, 3600),
    event_loop_nice: int(
      -5,
      "nice value of the thread that serves the API: negative keeps calls fast while pulls keep the CPUs busy (threads and processes it starts run at 0); 0 leaves it alone",
      -20,
      0,
    ),
    event_loop_slice_us: int(
      100,
      "time slice asked for the thread that serves the API, microseconds (Linux 6.12+, 100 to 100000): shorter than the other threads' (a few ms), so a call preempts them at once; 0 keeps the kernel's",
      0,
      100_000,
    ),
  }),
  metrics: table({
    address: str("127.0.0.1:9731", "Prometheus /metrics listen address; empty disables", hostPort),
  }),
  runtime: table({
    default_handler: str("runc", "runtime handler used when a pod names none"),
    cgroup_driver: oneOf("auto", ["auto", "cgroupfs", "systemd"], "auto picks systemd when systemd runs the host"),
    restrict_oom_score_adj: oneOf("auto", ["auto", "true", "false"], "clamp oom_score_adj to what the host allows; auto detects"),
    conmon_path: str("/usr/bin/conmon", "the per-container monitor binary", absolute),
    container_stop_timeout_seconds: int(10, "grace period when a stop request gives none", 0, 86400),
    call_timeout_seconds: int(60, "how long one OCI runtime command (start, kill, state, delete, update) may take before its process group is killed and the call fails with DEADLINE_EXCEEDED", 1, 3600),
    create_timeout_seconds: int(120, "how long conmon plus the runtime's create may take before both are killed and CreateContainer fails with DEADLINE_EXCEEDED", 1, 3600),
    default_sysctls: strings([], "sysctls applied to every pod, key=value"),
    handlers: {
      kind: "map",
      doc: "runtime handlers: name -> OCI runtime",
      of: {
        path: str("", "OCI runtime binary", absolute),
        root: str("", "runtime state root; empty = <state>/runtime/<name>", absoluteOrEmpty),
        type: oneOf("oci", ["oci"], "handler type"),
      },
      default: {
        runc: { path: "/usr/sbin/runc", root: "", type: "oci" },
        crun: { path: "/usr/bin/crun", root: "", type: "oci" },
      },
    },
  }),
  cni: table({
    conf_dir: str("/etc/cni/net.d", "where the CNI network configuration is read", absolute),
    bin_dirs: strings(["/opt/cni/bin", "/usr/lib/cni"], "where CNI plugin binaries are searched, in order"),
    cache_dir: str("", "CNI result cache; empty = <state>/cni-cache", absoluteOrEmpty),
    plugin_timeout_seconds: int(60, "timeout for one plugin invocation", 1, 3600),
    conf_template: str(
      "",
      "CNI config template (containerd's conf_template syntax: {{.PodCIDR}}, range over .PodCIDRRanges/.Routes) rendered to conf_dir/10-berth-net.conflist when the kubelet sends the pod CIDR and conf_dir has no network config; empty = wait for another component to write one",
      absoluteOrEmpty,
    ),
  }),
  image: table({
    max_concurrent_downloads: int(3, "layers downloaded at once per pull", 1, 64),
    stall_timeout_seconds: int(60, "a download receiving no bytes this long is aborted", 1, 3600),
    max_manifest_bytes: int(4 * 1024 * 1024, "largest manifest or index accepted", 1024),
    max_config_bytes: int(8 * 1024 * 1024, "largest image config accepted", 1024),
    gc_interval_seconds: int(300, "how often unreferenced content and snapshots are collected; 0 disables the timer", 0),
    platform: str("", "os/arch[/variant] to pick from indexes; empty = this host"),
    pull_nice: int(
      19,
      "nice value of the threads that download, decompress and unpack layers and of berthd's helper threads (all but the API's), within berthd's own scheduling group (its cpu cgroup or session autogroup; not applied in the root group): the API thread goes first, the pull keeps berthd's share; 0 leaves them alone",
      0,
      19,
    ),
    registries: {
      kind: "map",
      doc: 'per-registry settings, keyed by host ("docker.io", "127.0.0.1:5000")',
      of: {
        mirrors: strings([], 'mirror endpoints tried in order before the registry itself, e.g. "http://127.0.0.1:5000"'),
        plain_http: bool(false, "talk plain HTTP to this registry (only for local/test registries)"),
        insecure_skip_verify: bool(false, "do not verify the registry's TLS certificate"),
        ca_file: str("", "extra CA bundle (PEM) for this registry", absoluteOrEmpty),
        username: str("", "static credentials for this registry"),
        password: str("", "static credentials for this registry"),
      },
      default: {},
    },
  }),
  streaming: table({
    address: str("127.0.0.1:0", "exec/attach/port-forward server address; port 0 picks a free one", hostPort),
    tls_cert_file: str("", "serve TLS with this certificate", absoluteOrEmpty),
    tls_key_file: str("", "key of tls_cert_file", absoluteOrEmpty),
    token_ttl_seconds: int(60, "how long a streaming URL stays valid", 1, 3600),
    idle_timeout_seconds: int(14400, "idle streams are closed after this long", 1),
  }),
  stats: table({
    collect_interval_seconds: int(10, "how often cgroup stats are sampled", 1, 3600),
  }),
  events: table({
    buffer_size: int(1000, "events buffered per GetContainerEvents client before dropping", 1, 1_000_000),
  }),
  slo: table({
    flush_interval_seconds: int(30, "how often the SLO counters' window state is written to the metadata store (a kill -9 loses at most this much)", 1, 3600),
    bucket_seconds: int(300, "width of one stored time bucket of SLO counters", 60, 3600),
    retention_days: int(30, "how long SLO buckets are kept; no objective window may be longer", 1, 400),
    container_start: table({
      objective: num(99.5, "percent of container starts (CreateContainer + StartContainer) that succeed", 50, 99.999),
      window_days: int(30, "objective (error budget) window", 1, 400),
    }),
    image_pull: table({
      objective: num(99, "percent of image pulls that succeed", 50, 99.999),
      window_days: int(30, "objective (error budget) window", 1, 400),
    }),
    image_pull_latency: table({
      objective: num(95, "percent of successful pulls faster than threshold_seconds (pull p95)", 50, 99.999),
      threshold_seconds: num(30, "latency threshold; must be a bucket bound of berth_image_pull_duration_seconds", 0.05, 600),
      window_days: int(30, "objective (error budget) window", 1, 400),
    }),
    cri_read_latency: table({
      objective: num(99, "percent of read CRI calls (List*, *Status, *Stats, Version, ImageFsInfo) faster than threshold_seconds (p99)", 50, 99.999),
      threshold_seconds: num(0.1, "latency threshold; must be a bucket bound of berth_cri_request_duration_seconds", 0.0005, 120),
      window_days: int(30, "objective (error budget) window", 1, 400),
    }),
    cri_availability: table({
      objective: num(99.9, "percent of CRI calls not failing with a server-side code (INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED, DATA_LOSS)", 50, 99.999),
      window_days: int(30, "objective (error budget) window", 1, 400),
    }),
    monitor: table({
      objective: num(99.9, "percent of container exits observed by their conmon monitor (not lost with it)", 50, 99.999),
      window_days: int(30, "objective (error budget) window", 1, 400),
    }),
  }),
};
