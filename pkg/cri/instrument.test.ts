import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { NotFoundError } from "../errdefs/index.js";
import { EventEmitter } from "node:events";
import { registry } from "../metrics/index.js";
import { InflightTracker, MAX_STATUS_MESSAGE, ReadinessGate, toServiceError, unary } from "./instrument.js";

test("a status message quoting huge input back is cut to a size a client can receive", () => {
  const id = "x".repeat(1024 * 1024);
  const e = toServiceError(new NotFoundError(`sandbox "${id}" not found`));
  assert.equal(e.code, status.NOT_FOUND);
  assert.ok((e.details ?? "").length < MAX_STATUS_MESSAGE + 64, `details are ${(e.details ?? "").length} characters`);
  assert.match(e.details ?? "", /^sandbox "xxx/);
  assert.match(e.details ?? "", /… \(\d+ more characters\)$/);
});

test("ordinary status messages pass unchanged", () => {
  const e = toServiceError(new NotFoundError('sandbox "abc" not found'));
  assert.equal(e.details, 'sandbox "abc" not found');
});

test("a call is counted in flight until its answer is sent, per service, and by status once done", async () => {
  const opts = { service: "runtime", gate: new ReadinessGate(), inflight: new InflightTracker() };
  opts.gate.open();
  let release: (() => void) | undefined;
  const handler = unary(opts, "ListContainers", () => new Promise<{ n: number }>((resolve) => (release = () => resolve({ n: 1 }))));
  const call = Object.assign(new EventEmitter(), { request: {}, cancelled: false, getDeadline: () => Infinity });
  const answered = new Promise<unknown>((resolve) => handler(call as never, (err, value) => resolve(err ?? value)));
  const scrape = async (): Promise<string> => `${await registry.getSingleMetricAsString("berth_cri_requests_in_flight")}\n`;
  const before = (await registry.getSingleMetric("berth_cri_requests_total")?.get())?.values.find((v) => v.labels["method"] === "ListContainers" && v.labels["code"] === "OK")?.value ?? 0;
  await new Promise((r) => setImmediate(r));
  assert.match(await scrape(), /berth_cri_requests_in_flight\{service="runtime"\} 1\n/);
  release?.();
  assert.deepEqual(await answered, { n: 1 });
  await new Promise((r) => setImmediate(r));
  assert.match(await scrape(), /berth_cri_requests_in_flight\{service="runtime"\} 0\n/);
  const after = (await registry.getSingleMetric("berth_cri_requests_total")?.get())?.values.find((v) => v.labels["method"] === "ListContainers" && v.labels["code"] === "OK")?.value ?? 0;
  assert.equal(after, before + 1);
});
