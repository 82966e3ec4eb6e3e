import { InvalidArgumentError } from "../errdefs/index.js";
import { readFileInRoot } from "./rootfs-path.js";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 4) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === "" || f[3] === "") continue;
    out.push({ name: f[0] ?? "", uid, gid, home: f[5] ?? "" });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 3) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid) || f[2] === "") continue;
    const members = (f[3] ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "");
    out.push({ name: f[0] ?? "", gid, members });
  }
  return out;
}

/** What the container's user is asked to be: from the CRI security context, else the image USER. */
export interface UserRequest {
  runAsUser?: number | undefined;
  runAsUsername?: string | undefined;
  runAsGroup?: number | undefined;
  supplementalGroups?: readonly number[] | undefined;
  imageUser?: string | undefined;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  username: string | undefined;
  home: string | undefined;
}

const NUMERIC = /^[0-9]+$/;

function toId(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError(`${what} "${s}" is not a valid id`);
  return n;
}

/**
 * Resolves the process user against the image rootfs's /etc/passwd and
 * /etc/group (read inside the rootfs, symlinks confined to it). A name the
 * image does not know is an error; a numeric uid need not exist.
 */
export function resolveUser(rootfs: string | undefined, req: UserRequest): ResolvedUser {
  let passwd: PasswdEntry[] | undefined;
  let group: GroupEntry[] | undefined;
  const users = (): PasswdEntry[] => (passwd ??= rootfs ? parsePasswd(readFileInRoot(rootfs, "/etc/passwd") ?? "") : []);
  const groups = (): GroupEntry[] => (group ??= rootfs ? parseGroup(readFileInRoot(rootfs, "/etc/group") ?? "") : []);

  let uid: number;
  let gid: number | undefined;
  let entry: PasswdEntry | undefined;
  let userSpec: string;
  let groupSpec: string | undefined;

  if (req.runAsUsername !== undefined && req.runAsUsername !== "") {
    userSpec = req.runAsUsername;
  } else if (req.runAsUser !== undefined) {
    userSpec = String(req.runAsUser);
  } else {
    const u = req.imageUser ?? "";
    const colon = u.indexOf(":");
    userSpec = colon >= 0 ? u.slice(0, colon) : u;
    groupSpec = colon >= 0 ? u.slice(colon + 1) : undefined;
  }

  if (userSpec === "") {
    uid = 0;
    entry = users().find((p) => p.uid === 0);
  } else if (NUMERIC.test(userSpec)) {
    uid = toId(userSpec, "user");
    entry = users().find((p) => p.uid === uid);
  } else {
    entry = users().find((p) => p.name === userSpec);
    if (!entry) throw new InvalidArgumentError(`user "${userSpec}" is not in the image's /etc/passwd`);
    uid = entry.uid;
  }
  gid = entry?.gid;

  if (req.runAsGroup !== undefined) {
    gid = req.runAsGroup;
  } else if (groupSpec !== undefined && groupSpec !== "") {
    if (NUMERIC.test(groupSpec)) gid = toId(groupSpec, "group");
    else {
      const g = groups().find((x) => x.name === groupSpec);
      if (!g) throw new InvalidArgumentError(`group "${groupSpec}" is not in the image's /etc/group`);
      gid = g.gid;
    }
  }
  const primary = gid ?? 0;

  const extra: number[] = [primary];
  const name = entry?.name;
  if (name !== undefined) for (const g of groups()) if (g.members.includes(name)) extra.push(g.gid);
  for (const g of req.supplementalGroups ?? []) extra.push(g);
  const additionalGids = [...new Set(extra)];
  return { uid, gid: primary, additionalGids, username: name, home: entry?.home };
}
