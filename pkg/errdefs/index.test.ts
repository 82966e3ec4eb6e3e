import { test } from "node:test";
import assert from "node:assert/strict";
import { errorKind, errorOfKind, NotFoundError, InvalidArgumentError, errorMessage } from "./index.js";

test("errors keep their kind, name and cause", () => {
  const cause = new Error("disk full");
  const err = new NotFoundError('sandbox "abc" not found', { cause });
  assert.equal(errorKind(err), "not-found");
  assert.equal(err.name, "NotFoundError");
  assert.equal(err.cause, cause);
  assert.equal(errorKind(new InvalidArgumentError("x")), "invalid-argument");
});

test("foreign errors are internal, aborts are cancelled", () => {
  assert.equal(errorKind(new TypeError("boom")), "internal");
  const abort = new Error("aborted");
  abort.name = "AbortError";
  assert.equal(errorKind(abort), "cancelled");
  assert.equal(errorKind("a string"), "internal");
  assert.equal(errorMessage("plain"), "plain");
});

test("errorOfKind makes an error of every kind, with its class", () => {
  const kinds = ["invalid-argument", "not-found", "already-exists", "failed-precondition", "unavailable", "deadline-exceeded", "unimplemented", "permission-denied", "resource-exhausted", "aborted", "cancelled", "internal"] as const;
  for (const kind of kinds) {
    const cause = new Error("why");
    const err = errorOfKind(kind, `a ${kind} error`, { cause });
    assert.equal(errorKind(err), kind);
    assert.equal(err.message, `a ${kind} error`);
    assert.equal(err.cause, cause);
  }
  assert.ok(errorOfKind("not-found", "x") instanceof NotFoundError);
});

test("a full disk is resource-exhausted, whether the file system or SQLite says so", () => {
  for (const code of ["ENOSPC", "EDQUOT", "SQLITE_FULL"]) {
    const err = Object.assign(new Error("database or disk is full"), { code });
    assert.equal(errorKind(err), "resource-exhausted", code);
  }
  assert.equal(errorKind(Object.assign(new Error("other"), { code: "EIO" })), "internal");
});

test("too many open files is resource-exhausted, also as the cause of a plain error", () => {
  for (const code of ["EMFILE", "ENFILE"]) {
    const err = Object.assign(new Error(`${code}: too many open files, open '/x'`), { code });
    assert.equal(errorKind(err), "resource-exhausted", code);
    assert.equal(errorKind(new Error("cannot read the spec", { cause: err })), "resource-exhausted", code);
  }
  assert.equal(errorKind(Object.assign(new Error("Worker initialization failure: EMFILE"), { code: "ERR_WORKER_INIT_FAILED" })), "resource-exhausted");
  assert.equal(errorKind(new Error("wrapped", { cause: new Error("plain") })), "internal");
});
