import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { normalizeReference, type PullProgress } from "../../../pkg/image/index.js";
import { UsageError, type Command } from "../context.js";
import { bytes } from "../format.js";

interface PullArgs {
  image: string;
  auth: { username?: string; password?: string; auth?: string; identityToken?: string; registryToken?: string };
  stateDir: string | undefined;
  quiet: boolean;
}

function parse(args: string[]): PullArgs {
  const out: PullArgs = { image: "", auth: {}, stateDir: undefined, quiet: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const value = (): string => {
      const eq = a.indexOf("=");
      if (eq > 0) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const flag = a.split("=")[0];
    if (flag === "--creds") {
      const v = value();
      const c = v.indexOf(":");
      if (c < 0) throw new UsageError("--creds takes USERNAME:PASSWORD");
      out.auth.username = v.slice(0, c);
      out.auth.password = v.slice(c + 1);
    } else if (flag === "--auth") out.auth.auth = value();
    else if (flag === "--identity-token") out.auth.identityToken = value();
    else if (flag === "--registry-token") out.auth.registryToken = value();
    else if (flag === "--state") out.stateDir = value();
    else if (a === "-q" || a === "--quiet") out.quiet = true;
    else if (a.startsWith("-")) throw new UsageError(`pull: unknown flag ${a}`);
    else if (out.image) throw new UsageError("pull takes one image");
    else out.image = a;
  }
  if (!out.image) throw new UsageError("pull needs an image, e.g. berthctl pull busybox:latest");
  return out;
}

/** Reads the daemon's published progress of the pull of `ref` (state dir /pulls/*.json). */
function readProgress(dir: string, ref: string): PullProgress | undefined {
  if (!existsSync(dir)) return undefined;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".json")) continue;
    try {
      const p = JSON.parse(readFileSync(join(dir, f), "utf8")) as PullProgress;
      if (p.ref === ref || p.ref.split("@")[0] === ref.split("@")[0]) return p;
    } catch {
      // being replaced
    }
  }
  return undefined;
}

function bar(done: number, size: number, width = 24): string {
  const f = size > 0 ? Math.min(1, done / size) : 1;
  const n = Math.round(f * width);
  return `[${"=".repeat(Math.max(0, n - 1))}${n > 0 ? (n === width ? "=" : ">") : ""}${" ".repeat(width - n)}]`;
}

function render(p: PullProgress): string[] {
  return p.layers.map((l) => {
    const id = l.digest.slice(7, 19);
    const state = l.state.padEnd(11);
    const amount = l.state === "downloading" ? `${bytes(l.done)}/${bytes(l.size)}` : bytes(l.size);
    return `${id}: ${state} ${bar(l.state === "waiting" ? 0 : l.state === "downloading" ? l.done : l.size, l.size)} ${amount}`;
  });
}

export const pullCommand: Command = {
  name: "pull",
  summary: "pull an image (progress per layer)",
  usage: "berthctl pull [--creds USER:PASS | --auth BASE64 | --identity-token T | --registry-token T] [--state DIR] [-q] IMAGE",
  async run(ctx) {
    const a = parse(ctx.args);
    let ref: string;
    try {
      ref = normalizeReference(a.image);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const dir = join(a.stateDir ?? dirname(ctx.socket), "pulls");
    const tty = process.stdout.isTTY === true && !a.quiet && ctx.output === "table";
    let drawn = 0;
    let last = "";
    const printed = new Set<string>();
    const show = (): void => {
      const p = readProgress(dir, ref);
      if (!p) return;
      const lines = render(p);
      const text = lines.join("\n");
      if (text === last) return;
      last = text;
      if (tty) {
        if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
        process.stdout.write(text + "\n");
        drawn = lines.length;
      } else if (!a.quiet && ctx.output === "table") {
        // Without a terminal, print a layer's line when its state changes.
        const states = p.layers.map((l) => `${l.digest.slice(7, 19)}: ${l.state}`).join("\n");
        const changed = states.split("\n").filter((line) => !printed.has(line));
        for (const line of changed) printed.add(line);
        if (changed.length > 0) ctx.out(changed.join("\n"));
      }
    };
    const timer = setInterval(show, 200);
    try {
      const res = await ctx.client().image.pullImage({ image: { image: a.image }, auth: a.auth }, { timeoutMs: ctx.timeoutMs || 3_600_000 });
      show();
      if (ctx.output === "json") ctx.out(JSON.stringify({ imageRef: res.imageRef }, null, 2));
      else if (ctx.output === "yaml") ctx.out(`imageRef: ${res.imageRef}`);
      else ctx.out(a.quiet ? res.imageRef : `Image is up to date for ${res.imageRef}`);
    } finally {
      clearInterval(timer);
    }
  },
};
