import type { Command } from "../context.js";
import { UsageError } from "../context.js";
import { streamRemoteCommand } from "./exec-stream.js";

export const attachCommand: Command = {
  name: "attach",
  summary: "attach this terminal to a running container",
  usage: "berthctl attach [-i] [-t] [--transport spdy|websocket] CONTAINER-ID",
  async run(ctx) {
    let stdin = false;
    let tty = false;
    let transport: "spdy" | "websocket" = "spdy";
    const rest: string[] = [];
    for (let i = 0; i < ctx.args.length; i++) {
      const a = ctx.args[i]!;
      if (a === "-i" || a === "--stdin") stdin = true;
      else if (a === "-t" || a === "--tty") tty = true;
      else if (a === "-it" || a === "-ti") stdin = tty = true;
      else if (a === "--transport") transport = ctx.args[++i] === "websocket" ? "websocket" : "spdy";
      else rest.push(a);
    }
    if (rest.length !== 1) throw new UsageError("attach needs exactly one container id");
    const { url } = await ctx.client().runtime.attach({ containerId: rest[0]!, stdin, tty, stdout: true, stderr: !tty });
    return await streamRemoteCommand(url, { stdin, tty, transport });
  },
};
