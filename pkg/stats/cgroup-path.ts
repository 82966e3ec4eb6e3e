import { InvalidArgumentError } from "../errdefs/index.js";

/**
 * The cgroup of a container or pod, relative to a hierarchy's root ("/kubepods/pod1/berth-abc").
 *
 * Accepts the two forms an OCI spec's `linux.cgroupsPath` takes:
 *  - cgroupfs driver: a path ("/kubepods/burstable/pod1/berth-abc"; relative paths are taken from the root);
 *  - systemd driver: "slice:prefix:name" → "/<expanded slice>/prefix-name.scope", and a bare slice name
 *    ("kubepods-burstable-pod1.slice", as kubelet passes cgroup_parent) → its expanded path.
 */
export function cgroupRelPath(cgroupsPath: string): string {
  const p = cgroupsPath.trim();
  if (p === "") return "/";
  if (!p.startsWith("/") && p.includes(":")) {
    const parts = p.split(":");
    if (parts.length !== 3) throw new InvalidArgumentError(`cgroup path "${cgroupsPath}": systemd form must be "slice:prefix:name"`);
    const [slice = "", prefix = "", name = ""] = parts;
    if (!name) throw new InvalidArgumentError(`cgroup path "${cgroupsPath}": systemd form has an empty unit name`);
    const parent = expandSlice(slice === "" ? "system.slice" : slice);
    // A name that already is a unit ("foo.slice") is used as is; otherwise it is a scope.
    const unit = name.endsWith(".slice") ? name : `${prefix ? `${prefix}-` : ""}${name}.scope`;
    return normalize(`${parent}/${unit}`);
  }
  if (!p.startsWith("/") && p.endsWith(".slice")) return expandSlice(p);
  return normalize(p.startsWith("/") ? p : `/${p}`);
}

/** "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root. */
export function expandSlice(slice: string): string {
  if (!slice.endsWith(".slice")) throw new InvalidArgumentError(`cgroup slice "${slice}": a slice name ends in ".slice"`);
  if (slice.includes("/")) throw new InvalidArgumentError(`cgroup slice "${slice}": a slice name has no "/"`);
  if (slice === "-.slice") return "/";
  const base = slice.slice(0, -".slice".length);
  if (base === "" || base.startsWith("-") || base.endsWith("-") || base.includes("--")) {
    throw new InvalidArgumentError(`cgroup slice "${slice}": invalid slice name`);
  }
  let path = "";
  let prefix = "";
  for (const component of base.split("-")) {
    prefix = prefix ? `${prefix}-${component}` : component;
    path += `/${prefix}.slice`;
  }
  return path;
}

function normalize(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") throw new InvalidArgumentError(`cgroup path "${p}": ".." is not allowed`);
    out.push(seg);
  }
  return "/" + out.join("/");
}
