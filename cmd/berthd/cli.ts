import { parseArgs } from "node:util";
import { ConfigError, loadConfig, renderConfig, defaultConfig, type Config } from "../../pkg/config/index.js";
import { LOG_LEVELS, setRootLogger } from "../../pkg/log/index.js";
import { runtimeVersion } from "../../pkg/version/index.js";
import { Daemon } from "./daemon.js";

const USAGE = `usage: berthd [flags]            run the daemon
       berthd config default     print the full default configuration (TOML)
       berthd --version

flags:
  --config FILE     configuration file (default /etc/berth/config.toml; optional when not given)
  --root DIR        persistent data directory (overrides config "root")
  --state DIR       ephemeral state directory (overrides config "state")
  --socket PATH     CRI unix socket (overrides config "grpc.address")
  --log-level LVL   ${LOG_LEVELS.join(" | ")} (overrides config "log_level")
`;

function fail(msg: string, code = 2): never {
  process.stderr.write(`berthd: ${msg}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        config: { type: "string" },
        root: { type: "string" },
        state: { type: "string" },
        socket: { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.version) {
    process.stdout.write(`berthd ${runtimeVersion()}\n`);
    return;
  }
  if (positionals.length > 0) {
    if (positionals[0] === "config" && positionals[1] === "default" && positionals.length === 2) {
      process.stdout.write(renderConfig(defaultConfig()));
      return;
    }
    fail(`unknown command "${positionals.join(" ")}"\n\n${USAGE}`);
  }

  let config: Config;
  try {
    config = loadConfig(values.config ?? "/etc/berth/config.toml", values.config !== undefined);
  } catch (err) {
    if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`);
    throw err;
  }
  if (values.root) config.root = values.root;
  if (values.state) config.state = values.state;
  if (values.socket) config.grpc.address = values.socket;
  if (values["log-level"]) {
    const lvl = values["log-level"];
    if (!(LOG_LEVELS as readonly string[]).includes(lvl)) fail(`--log-level: "${lvl}" is not one of ${LOG_LEVELS.join(", ")}`);
    config.log_level = lvl as Config["log_level"];
  }
  for (const [flag, v] of [["--root", config.root], ["--state", config.state], ["--socket", config.grpc.address]] as const) {
    if (!v.startsWith("/")) fail(`${flag}: "${v}" must be an absolute path`);
  }

  const log = setRootLogger({ level: config.log_level });
  const daemon = new Daemon(config);
  try {
    await daemon.start();
  } catch (err) {
    log.fatal({ err }, "berthd failed to start");
    await daemon.stop().catch(() => undefined);
    process.stderr.write(`berthd: ${(err as Error).message}\n`);
    process.exit(1);
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down: draining in-flight calls; containers keep running");
    daemon
      .stop()
      .then(() => {
        log.info("berthd stopped");
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, "error during shutdown");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`berthd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
