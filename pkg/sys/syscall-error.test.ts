import { test } from "node:test";
import assert from "node:assert/strict";
import { constants } from "node:os";
import { SyscallError } from "./index.js";

test("errno 11 is EAGAIN and 95 ENOTSUP: the names callers compare with, not the aliases", () => {
  assert.equal(new SyscallError("connect", constants.errno.EAGAIN, "/x").code, "EAGAIN");
  assert.equal(new SyscallError("connect", constants.errno.EWOULDBLOCK, "/x").code, "EAGAIN");
  assert.equal(new SyscallError("llistxattr", constants.errno.EOPNOTSUPP, "/x").code, "ENOTSUP");
  assert.equal(new SyscallError("mount", constants.errno.ENOENT, "/x").code, "ENOENT");
  assert.match(new SyscallError("connect", constants.errno.EAGAIN, "/s").message, /connect \/s: EAGAIN/);
});
