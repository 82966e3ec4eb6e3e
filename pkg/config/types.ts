/** The typed view of the configuration; schema.ts holds defaults and checks for each key. */

export interface RuntimeHandlerConfig {
  path: string;
  root: string;
  type: "oci";
}

export interface RegistryConfig {
  mirrors: string[];
  plain_http: boolean;
  insecure_skip_verify: boolean;
  ca_file: string;
  username: string;
  password: string;
}

/** One service-level objective: a percentage over a rolling window (and a latency threshold for latency SLOs). */
export interface SloObjectiveConfig {
  objective: number;
  window_days: number;
  threshold_seconds?: number;
}

export interface SloConfig {
  flush_interval_seconds: number;
  bucket_seconds: number;
  retention_days: number;
  container_start: SloObjectiveConfig;
  image_pull: SloObjectiveConfig;
  image_pull_latency: SloObjectiveConfig & { threshold_seconds: number };
  cri_read_latency: SloObjectiveConfig & { threshold_seconds: number };
  cri_availability: SloObjectiveConfig;
  monitor: SloObjectiveConfig;
}

export interface Config {
  root: string;
  state: string;
  log_level: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
  grpc: {
    address: string;
    server: "berth" | "grpc-js";
    socket_mode: string;
    max_recv_message_size: number;
    max_send_message_size: number;
    shutdown_grace_seconds: number;
    event_loop_nice: number;
    event_loop_slice_us: number;
  };
  metrics: { address: string };
  runtime: {
    default_handler: string;
    cgroup_driver: "auto" | "cgroupfs" | "systemd";
    restrict_oom_score_adj: "auto" | "true" | "false";
    conmon_path: string;
    container_stop_timeout_seconds: number;
    call_timeout_seconds: number;
    create_timeout_seconds: number;
    default_sysctls: string[];
    handlers: Record<string, RuntimeHandlerConfig>;
  };
  cni: {
    conf_dir: string;
    bin_dirs: string[];
    cache_dir: string;
    plugin_timeout_seconds: number;
    conf_template: string;
  };
  image: {
    max_concurrent_downloads: number;
    stall_timeout_seconds: number;
    max_manifest_bytes: number;
    max_config_bytes: number;
    gc_interval_seconds: number;
    platform: string;
    pull_nice: number;
    registries: Record<string, RegistryConfig>;
  };
  streaming: {
    address: string;
    tls_cert_file: string;
    tls_key_file: string;
    token_ttl_seconds: number;
    idle_timeout_seconds: number;
  };
  stats: { collect_interval_seconds: number };
  events: { buffer_size: number };
  slo: SloConfig;
}
