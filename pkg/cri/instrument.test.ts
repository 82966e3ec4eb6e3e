import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { NotFoundError } from "../errdefs/index.js";
import { MAX_STATUS_MESSAGE, toServiceError } from "./instrument.js";

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
