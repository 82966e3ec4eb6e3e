import { test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineExceededError, FailedPreconditionError, NotFoundError, PermissionDeniedError, UnavailableError } from "../errdefs/index.js";
import { exitClass, pullFailureReason, startFailureReason, unpackFailureReason } from "./sli.js";

test("start failure reasons come from the OCI runtime's message and the error kind", () => {
  assert.equal(startFailureReason(new Error('runc create failed: unable to start container process: exec: "/no/such/binary": stat /no/such/binary: no such file or directory')), "command_not_found");
  assert.equal(startFailureReason(new Error('exec: "nope": executable file not found in $PATH')), "command_not_found");
  assert.equal(startFailureReason(new Error("runc start: exec format error")), "exec_format_error");
  assert.equal(startFailureReason(new DeadlineExceededError("runc create did not answer")), "timeout");
  assert.equal(startFailureReason(new FailedPreconditionError('sandbox "x" is not ready')), "precondition");
  assert.equal(startFailureReason(new Error("mount overlay on /x: invalid argument")), "rootfs");
  assert.equal(startFailureReason(new Error("runc create failed: something new")), "oci_runtime_error");
  assert.equal(startFailureReason(new Error("CNI ADD of network berth (plugin bridge) timed out after 60s")), "cni_timeout");
  assert.equal(startFailureReason(new Error("CNI ADD failed: plugin bridge: failed to allocate for range 0")), "cni_error");
});

test("pull failure reasons: HTTP status first, then network codes, then the error kind", () => {
  const http = (status: number): Error => Object.assign(new Error(`answered HTTP ${status}`), { status });
  assert.equal(pullFailureReason(http(500)), "registry_5xx");
  assert.equal(pullFailureReason(http(503)), "registry_5xx");
  assert.equal(pullFailureReason(http(401)), "unauthorized");
  assert.equal(pullFailureReason(http(429)), "rate_limited");
  assert.equal(pullFailureReason(http(418)), "registry_4xx");
  assert.equal(pullFailureReason(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })), "network");
  assert.equal(pullFailureReason(new UnavailableError("registry 127.0.0.1:1 answered HTTP 502: bad gateway")), "registry_5xx");
  assert.equal(pullFailureReason(new NotFoundError("manifest unknown")), "not_found");
  assert.equal(pullFailureReason(new PermissionDeniedError("pull access denied")), "unauthorized");
  assert.equal(pullFailureReason(new DeadlineExceededError("download stalled")), "timeout");
});

test("unpack failure reasons and exit classes", () => {
  assert.equal(unpackFailureReason(Object.assign(new Error("write: no space left on device"), { code: "ENOSPC" })), "no_space");
  assert.equal(unpackFailureReason(new Error("unexpected end of file in gzip stream")), "corrupt_layer");
  assert.equal(unpackFailureReason(new FailedPreconditionError("layer diff id sha256:a does not match sha256:b")), "digest_mismatch");
  assert.equal(exitClass(0, "Completed"), "completed");
  assert.equal(exitClass(3, "Error"), "error");
  assert.equal(exitClass(137, "Error"), "signal");
  assert.equal(exitClass(137, "OOMKilled"), "oom");
  assert.equal(exitClass(128, "StartError"), "start_error");
});
