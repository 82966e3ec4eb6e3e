#!/usr/bin/env node
// Import checks over the TypeScript sources (no build needed):
//  1. no import cycles between files;
//  2. no cycles between pkg/* packages;
//  3. imports flow one way: cmd → cri → runtime → {services} → {base};
//  4. code outside a package imports it only through its index.ts;
//  5. only pkg/cri, pkg/shim, cmd, test-e2e and hack import the generated API.
// Prints each problem and exits 1 if there is any.
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import { join, dirname, relative, resolve } from "node:path";

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), ".."));
const DIRS = ["cmd", "pkg", "test-e2e", "hack"];

// Lower number = lower layer. A package may import only packages of a lower layer.
const LAYER = {
  version: 0, errdefs: 0, log: 1, config: 1, sys: 2, metrics: 2, sync: 2,
  store: 3,
  content: 4, snapshot: 4, cni: 4, netns: 4, oci: 4, shim: 4, streaming: 4, stats: 4, events: 4, slo: 4,
  image: 5,
  runtime: 6,
  cri: 7,
};

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name === "gen") continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (p.endsWith(".ts") && !p.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

const files = DIRS.flatMap((d) => walk(join(root, d), []));
const importRe = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/g;
const dynRe = /import\(\s*["']([^"']+)["']\s*\)/g;

const graph = new Map();
const problems = [];
const pkgOf = (file) => {
  const rel = relative(root, file).split("/");
  return rel[0] === "pkg" ? rel[1] : undefined;
};

for (const file of files) {
  const src = readFileSync(file, "utf8");
  const deps = [];
  for (const re of [importRe, dynRe]) {
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(src))) {
      const spec = m[1];
      if (!spec.startsWith(".")) continue;
      const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
      const relTarget = relative(root, target);
      const relFile = relative(root, file);
      if (relTarget.startsWith("api/gen/")) {
        const allowed = /^(pkg\/cri|pkg\/shim|cmd|test-e2e|hack)\//.test(relFile);
        if (!allowed) problems.push(`${relFile}: imports generated API (${spec}); only pkg/cri, pkg/shim, cmd and tests may`);
        continue;
      }
      const from = pkgOf(file);
      const to = pkgOf(target);
      // Test fixtures (pkg/X/testing.ts, pkg/X/testing/*) may be used by tests and benchmarks, never by product code.
      const fixtureUse = (target.endsWith(`pkg/${to}/testing.ts`) || target.includes(`pkg/${to}/testing/`)) && (/^(hack|test-e2e)\//.test(relFile) || relFile.endsWith(".test.ts"));
      if (to && from !== to && !target.endsWith(`pkg/${to}/index.ts`) && !fixtureUse) {
        problems.push(`${relFile}: imports ${relTarget}; use pkg/${to}/index.js, the package's public surface`);
      }
      if (from && to && from !== to) {
        const lf = LAYER[from];
        const lt = LAYER[to];
        if (lf === undefined) problems.push(`pkg/${from}: unknown package; add it to LAYER in hack/check-imports.mjs`);
        else if (lt === undefined) problems.push(`pkg/${to}: unknown package; add it to LAYER in hack/check-imports.mjs`);
        else if (lt >= lf) problems.push(`${relFile}: pkg/${from} (layer ${lf}) must not import pkg/${to} (layer ${lt})`);
      }
      if (existsSync(target)) deps.push(target);
    }
  }
  graph.set(file, deps);
}

// File-level cycles (Tarjan's strongly connected components).
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
function strong(v) {
  idx.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    const selfLoop = (graph.get(v) ?? []).includes(v);
    if (comp.length > 1 || selfLoop) problems.push(`import cycle: ${comp.map((f) => relative(root, f)).reverse().join(" → ")}`);
  }
}
for (const v of graph.keys()) if (!idx.has(v)) strong(v);

if (problems.length) {
  for (const p of [...new Set(problems)]) console.error(p);
  console.error(`check-imports: ${problems.length} problem(s) in ${files.length} files`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, no cycles, layering respected`);
