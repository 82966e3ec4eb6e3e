import { test } from "node:test";
import assert from "node:assert/strict";
import { renderCniTemplate } from "./template.js";

// The shape of containerd's documented conf_template example.
const TEMPLATE = `{
  "cniVersion": "1.0.0",
  "name": "k8s-pod-network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "ipam": {
        "type": "host-local",
        "ranges": [
          {{- range $i, $range := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$range}}"}]{{end}}
        ],
        "routes": [
          {{- range $i, $route := .Routes}}{{if $i}}, {{end}}{"dst": "{{$route}}"}{{end}}
        ]
      }
    }
  ],
  "first": "{{.PodCIDR}}"
}`;

test("renders containerd-style templates: ranges, routes, separators, trim markers", () => {
  const out = renderCniTemplate(TEMPLATE, { PodCIDR: "10.1.0.0/24", PodCIDRRanges: ["10.1.0.0/24", "fd00::/64"], Routes: ["0.0.0.0/0", "::/0"] });
  const conf = JSON.parse(out) as { plugins: { ipam: { ranges: unknown; routes: unknown } }[]; first: string };
  assert.deepEqual(conf.plugins[0]!.ipam.ranges, [[{ subnet: "10.1.0.0/24" }], [{ subnet: "fd00::/64" }]]);
  assert.deepEqual(conf.plugins[0]!.ipam.routes, [{ dst: "0.0.0.0/0" }, { dst: "::/0" }]);
  assert.equal(conf.first, "10.1.0.0/24");
  assert.match(out, /"ranges": \[\[/, "{{- trims the whitespace before the action");
});

test("range with one variable or dot, if/else, -}} trimming", () => {
  const v = { PodCIDR: "a", PodCIDRRanges: ["x", "y"], Routes: [] };
  assert.equal(renderCniTemplate("{{range .PodCIDRRanges}}<{{.}}>{{end}}", v), "<x><y>");
  assert.equal(renderCniTemplate("{{range $r := .PodCIDRRanges}}{{$r}};{{end}}", v), "x;y;");
  assert.equal(renderCniTemplate("{{if .Routes}}yes{{else}}no{{end}}", v), "no");
  assert.equal(renderCniTemplate("a {{- .PodCIDR -}} \n b", v), "aab");
});

test("unsupported or broken templates are errors naming the problem", () => {
  const v = { PodCIDR: "a", PodCIDRRanges: [], Routes: [] };
  assert.throws(() => renderCniTemplate("{{printf \"%s\" .PodCIDR}}", v, "/t.json"), /\/t\.json: unsupported action \{\{printf/);
  assert.throws(() => renderCniTemplate("{{.Nope}}", v), /unknown field \.Nope/);
  assert.throws(() => renderCniTemplate("{{range .Routes}}x", v), /not closed by \{\{end\}\}/);
  assert.throws(() => renderCniTemplate("{{end}}", v), /without a block/);
  assert.throws(() => renderCniTemplate("{{$x}}", v), /undefined variable \$x/);
});
