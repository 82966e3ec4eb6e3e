import type { Command } from "../context.js";
import { UsageError } from "../context.js";
import { parsePortMapping, startPortForward } from "./exec-stream.js";

export const portForwardCommand: Command = {
  name: "port-forward",
  summary: "forward local ports to ports in a pod (until interrupted)",
  usage: "berthctl port-forward POD-ID [LOCAL:]REMOTE...",
  async run(ctx) {
    const [pod, ...specs] = ctx.args;
    if (!pod || specs.length === 0) throw new UsageError("port-forward needs a pod id and at least one port");
    const mappings = specs.map((s) => {
      try {
        return parsePortMapping(s);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    });
    const { url } = await ctx.client().runtime.portForward({ podSandboxId: pod, port: mappings.map((m) => m.remote) });
    const pf = await startPortForward(url, mappings, (msg) => process.stderr.write(`${msg}\n`));
    for (const p of pf.ports) ctx.out(`Forwarding from 127.0.0.1:${p.local} -> ${p.remote}`);
    const stop = () => pf.close();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    await pf.closed;
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  },
};
