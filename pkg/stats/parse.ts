/** Parsers for the small text files of cgroupfs and procfs. Pure functions over file contents. */

/** Parses an unsigned integer file ("12345\n"); "max" (cgroup v2) gives undefined. */
export function parseUint(text: string): bigint | undefined {
  const s = text.trim();
  if (s === "" || s === "max") return undefined;
  if (!/^\d+$/.test(s)) return undefined;
  return BigInt(s);
}

/** Parses "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control) into a map. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp <= 0) continue;
    const value = line.slice(sp + 1).trim();
    if (!/^\d+$/.test(value)) continue;
    out.set(line.slice(0, sp), BigInt(value));
  }
  return out;
}

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Total stall time, microseconds as the kernel reports it. */
  totalUs: bigint;
}

export interface Psi {
  some: PsiLine | undefined;
  full: PsiLine | undefined;
}

/** Parses a pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull …"). */
export function parsePsi(text: string): Psi | undefined {
  const psi: Psi = { some: undefined, full: undefined };
  let any = false;
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const kind = fields[0];
    if (kind !== "some" && kind !== "full") continue;
    const kv = new Map<string, string>();
    for (const f of fields.slice(1)) {
      const eq = f.indexOf("=");
      if (eq > 0) kv.set(f.slice(0, eq), f.slice(eq + 1));
    }
    const total = kv.get("total");
    if (total === undefined || !/^\d+$/.test(total)) continue;
    psi[kind] = {
      avg10: Number(kv.get("avg10") ?? 0),
      avg60: Number(kv.get("avg60") ?? 0),
      avg300: Number(kv.get("avg300") ?? 0),
      totalUs: BigInt(total),
    };
    any = true;
  }
  return any ? psi : undefined;
}

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxPackets: bigint;
  rxErrors: bigint;
  rxDropped: bigint;
  txBytes: bigint;
  txPackets: bigint;
  txErrors: bigint;
  txDropped: bigint;
}

/** Parses /proc/<pid>/net/dev: two header lines, then "name: rx(8 fields) tx(8 fields)". */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const nums = line.slice(colon + 1).trim().split(/\s+/);
    if (!name || nums.length < 16 || !nums.every((n) => /^\d+$/.test(n))) continue;
    const n = (i: number): bigint => BigInt(nums[i] ?? "0");
    out.push({
      name,
      rxBytes: n(0),
      rxPackets: n(1),
      rxErrors: n(2),
      rxDropped: n(3),
      txBytes: n(8),
      txPackets: n(9),
      txErrors: n(10),
      txDropped: n(11),
    });
  }
  return out;
}

/**
 * The mount point holding `path`, from /proc/self/mountinfo text (longest matching mount point).
 * Escapes (\040 for space) in mountinfo are decoded.
 */
export function mountPointOf(path: string, mountinfo: string): string | undefined {
  let best: string | undefined;
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const mp = f[4];
    if (!mp) continue;
    const decoded = mp.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const under = decoded === "/" || path === decoded || path.startsWith(decoded.endsWith("/") ? decoded : decoded + "/");
    if (under && (best === undefined || decoded.length > best.length)) best = decoded;
  }
  return best;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The overlay upper dir (writable layer) of the overlay mounted at `mountpoint` (a container's rootfs),
 * from /proc/self/mountinfo text; undefined if no overlay is mounted there. The last mount wins.
 */
export function overlayUpperDir(mountpoint: string, mountinfo: string): string | undefined {
  let found: string | undefined;
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(" ");
    if (pre[4] === undefined || unescapeMountinfo(pre[4]) !== mountpoint) continue;
    const post = line.slice(sep + 3).split(" ");
    if (post[0] !== "overlay") continue;
    found = undefined;
    for (const opt of (post[2] ?? "").split(",")) {
      if (opt.startsWith("upperdir=")) found = unescapeMountinfo(opt.slice("upperdir=".length));
    }
  }
  return found;
}
