import { test } from "node:test";
import assert from "node:assert/strict";
import { MetricsServer } from "./index.js";

test("the metrics listener serves /metrics, JSON routes such as /slo, and names them on a 404", async () => {
  let calls = 0;
  const server = new MetricsServer({
    "/slo": () => ({ slos: [], calls: ++calls }),
    "/broken": () => Promise.reject(new Error("store closed")),
  });
  const addr = await server.listen("127.0.0.1:0");
  const base = `http://127.0.0.1:${addr.port}`;
  try {
    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /# TYPE berth_container_starts_total counter/);
    const slo = await fetch(`${base}/slo?x=1`);
    assert.equal(slo.status, 200);
    assert.equal(slo.headers.get("content-type"), "application/json");
    assert.deepEqual(await slo.json(), { slos: [], calls: 1 });
    const broken = await fetch(`${base}/broken`);
    assert.equal(broken.status, 500);
    assert.match(await broken.text(), /store closed/);
    const post = await fetch(`${base}/slo`, { method: "POST" });
    assert.equal(post.status, 404);
    assert.match(await post.text(), /try \/metrics or \/slo or \/broken/);
    assert.equal(calls, 1);
  } finally {
    await server.close();
  }
});
