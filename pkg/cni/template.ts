/**
 * The CNI config template the kubelet's pod CIDR is rendered into
 * (UpdateRuntimeConfig), in the subset of Go text/template syntax that
 * containerd's conf_template examples use, so the same files work:
 *   {{.PodCIDR}}                     the first pod CIDR
 *   {{range $i, $r := .PodCIDRRanges}} … {{$r}} … {{end}}   (also .Routes; {{range .X}} with {{.}})
 *   {{if $i}}, {{end}}               separators ({{else}} allowed)
 *   {{- … -}}                        trims the whitespace on that side
 * Anything else is an error naming the action.
 */
import { InvalidArgumentError } from "../errdefs/index.js";

export interface CniTemplateValues {
  PodCIDR: string;
  PodCIDRRanges: string[];
  Routes: string[];
}

type Value = string | number | string[] | CniTemplateValues;

type Node =
  | { kind: "text"; text: string }
  | { kind: "print"; expr: string }
  | { kind: "range"; expr: string; idx?: string; val?: string; body: Node[] }
  | { kind: "if"; expr: string; then: Node[]; else: Node[] };

interface Token {
  text?: string;
  action?: string;
}

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  const re = /\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}/gs;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, "");
    if (m[1]) text = text.replace(/\s+$/, "");
    if (text) tokens.push({ text });
    tokens.push({ action: m[2] ?? "" });
    trimNext = Boolean(m[3]);
    last = re.lastIndex;
  }
  let tail = src.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, "");
  if (tail) tokens.push({ text: tail });
  return tokens;
}

function parse(tokens: Token[], pos: { i: number }, file: string, inBlock: boolean): { nodes: Node[]; end: "end" | "else" | "eof" } {
  const nodes: Node[] = [];
  while (pos.i < tokens.length) {
    const t = tokens[pos.i++]!;
    if (t.text !== undefined) {
      nodes.push({ kind: "text", text: t.text });
      continue;
    }
    const a = t.action!;
    if (a === "end" || a === "else") {
      if (!inBlock) throw new InvalidArgumentError(`CNI config template ${file}: {{${a}}} without a block`);
      return { nodes, end: a };
    }
    let m: RegExpExecArray | null;
    if ((m = /^range\s+(?:(\$\w+)\s*(?:,\s*(\$\w+))?\s*:=\s*)?(\.\w+)$/.exec(a))) {
      const body = parse(tokens, pos, file, true);
      if (body.end !== "end") throw new InvalidArgumentError(`CNI config template ${file}: {{${a}}} is not closed by {{end}}`);
      // One variable is the element; two are index and element.
      const node: Node = { kind: "range", expr: m[3]!, body: body.nodes };
      if (m[2]) Object.assign(node, { idx: m[1], val: m[2] });
      else if (m[1]) Object.assign(node, { val: m[1] });
      nodes.push(node);
    } else if ((m = /^if\s+(\$\w+|\.\w*)$/.exec(a))) {
      const then = parse(tokens, pos, file, true);
      let elseNodes: Node[] = [];
      if (then.end === "else") {
        const e = parse(tokens, pos, file, true);
        if (e.end !== "end") throw new InvalidArgumentError(`CNI config template ${file}: {{else}} is not closed by {{end}}`);
        elseNodes = e.nodes;
      } else if (then.end !== "end") throw new InvalidArgumentError(`CNI config template ${file}: {{${a}}} is not closed by {{end}}`);
      nodes.push({ kind: "if", expr: m[1]!, then: then.nodes, else: elseNodes });
    } else if (/^(\$\w+|\.\w*)$/.test(a)) {
      nodes.push({ kind: "print", expr: a });
    } else {
      throw new InvalidArgumentError(`CNI config template ${file}: unsupported action {{${a}}} (supported: .Field, $var, range, if/else, end)`);
    }
  }
  return { nodes, end: "eof" };
}

function lookup(expr: string, dot: Value, vars: Map<string, Value>, file: string): Value {
  if (expr === ".") return dot;
  if (expr.startsWith("$")) {
    const v = vars.get(expr);
    if (v === undefined) throw new InvalidArgumentError(`CNI config template ${file}: undefined variable ${expr}`);
    return v;
  }
  const field = expr.slice(1);
  if (typeof dot !== "object" || Array.isArray(dot) || !(field in dot)) {
    throw new InvalidArgumentError(`CNI config template ${file}: unknown field ${expr} (known: .PodCIDR, .PodCIDRRanges, .Routes)`);
  }
  return dot[field as keyof CniTemplateValues];
}

function truthy(v: Value): boolean {
  if (Array.isArray(v)) return v.length > 0;
  return v !== "" && v !== 0;
}

function render(nodes: Node[], dot: Value, vars: Map<string, Value>, file: string): string {
  let out = "";
  for (const n of nodes) {
    if (n.kind === "text") out += n.text;
    else if (n.kind === "print") {
      const v = lookup(n.expr, dot, vars, file);
      out += Array.isArray(v) ? `[${v.join(" ")}]` : String(v);
    } else if (n.kind === "if") {
      out += render(truthy(lookup(n.expr, dot, vars, file)) ? n.then : n.else, dot, vars, file);
    } else {
      const list = lookup(n.expr, dot, vars, file);
      if (!Array.isArray(list)) throw new InvalidArgumentError(`CNI config template ${file}: range over ${n.expr}, which is not a list`);
      list.forEach((item, i) => {
        const scope = new Map(vars);
        if (n.idx) scope.set(n.idx, i);
        if (n.val) scope.set(n.val, item);
        out += render(n.body, item, scope, file);
      });
    }
  }
  return out;
}

/** Renders template text with the pod CIDR values; InvalidArgument for syntax outside the subset. */
export function renderCniTemplate(src: string, values: CniTemplateValues, file = "template"): string {
  const { nodes } = parse(tokenize(src), { i: 0 }, file, false);
  return render(nodes, values, new Map(), file);
}
