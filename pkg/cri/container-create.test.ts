import { test } from "node:test";
import assert from "node:assert/strict";
import { errorKind } from "../errdefs/index.js";
import { validateLogPath } from "./container-create.js";

const rejected = (p: string): string => {
  try {
    validateLogPath(p);
  } catch (err) {
    assert.equal(errorKind(err), "invalid-argument", p);
    return (err as Error).message;
  }
  return "";
};

test("log paths that climb out of the pod's log directory are InvalidArgument", () => {
  for (const p of ["..", "../x.log", "../../escape.log", "a/../../x.log", "/../x.log", "a/b/../../../x.log"]) {
    assert.match(rejected(p), /config\.log_path .* leaves the pod's log directory/, p);
  }
});

test("a NUL byte or a directory as the log path is InvalidArgument", () => {
  assert.match(rejected("x\0y.log"), /NUL byte/);
  for (const p of [".", "./", "a/..", "logs/"]) assert.match(rejected(p), /names a directory/, p);
});

test("ordinary log paths pass, including nested ones and ones that stay inside", () => {
  for (const p of ["", "c.log", "c/0.log", "a/../b.log", "/abs/inside.log", "./x.log"]) assert.equal(rejected(p), "", p);
});
