import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import type Koffi from "koffi";
import { connectSeqpacket } from "./seqpacket.js";

const koffi = createRequire(import.meta.url)("koffi") as typeof Koffi;
const lib = koffi.load("libc.so.6");
type Fn = (...args: unknown[]) => number;
const socket = lib.func("int socket(int, int, int)") as Fn;
const bind = lib.func("int bind(int, const void *, uint32_t)") as Fn;
const listen = lib.func("int listen(int, int)") as Fn;
const accept = lib.func("int accept(int, void *, void *)") as Fn;
const send = lib.func("long write(int, const void *, size_t)") as Fn;
const recv = lib.func("long read(int, _Out_ uint8_t *, size_t)") as Fn;
const close = lib.func("int close(int)") as Fn;

test("connectSeqpacket: messages keep their boundaries both ways, end() is a shutdown of the write side, long paths work", async () => {
  // Deeper than sun_path allows, as container bundles are.
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "seqpacket-")), "d".repeat(60), "e".repeat(60));
  fs.mkdirSync(dir, { recursive: true });
  const sockPath = path.join(dir, "attach");
  assert.ok(sockPath.length > 108);
  const dirFd = fs.openSync(dir, "r");
  const srv = socket(1, 5, 0);
  try {
    const addr = Buffer.alloc(110);
    addr.writeUInt16LE(1, 0);
    addr.write(`/proc/self/fd/${dirFd}/attach`, 2);
    assert.equal(bind(srv, addr, addr.length), 0);
    assert.equal(listen(srv, 4), 0);

    assert.throws(() => connectSeqpacket(path.join(dir, "missing")), (e: Error & { code?: string }) => e.code === "ENOENT");

    const client = connectSeqpacket(sockPath);
    const conn = accept(srv, null, null);
    assert.ok(conn >= 0);
    const got: string[] = [];
    const twoMessages = new Promise<void>((resolve) =>
      client.on("data", (c: Buffer) => {
        got.push(c.toString());
        if (got.length === 2) resolve();
      }),
    );
    send(conn, Buffer.from("\x02first"), 6);
    send(conn, Buffer.from("\x03second"), 7);
    await twoMessages;
    assert.deepEqual(got, ["\x02first", "\x03second"]);

    await new Promise<void>((r) => client.write("abc", () => r()));
    await new Promise<void>((r) => client.write("defg", () => r()));
    const buf = Buffer.alloc(100);
    assert.equal(recv(conn, buf, 100), 3);
    assert.equal(recv(conn, buf, 100), 4);
    client.end();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(recv(conn, buf, 100), 0, "the server reads EOF after end()");
    // Half-open: the client still reads after its end().
    const last = new Promise<string>((resolve) => client.once("data", (c: Buffer) => resolve(c.toString())));
    send(conn, Buffer.from("\x02late"), 5);
    assert.equal(await last, "\x02late");
    const ended = new Promise((r) => client.once("end", r));
    close(conn);
    await ended;
    client.destroy();
  } finally {
    close(srv);
    fs.closeSync(dirFd);
    fs.rmSync(path.dirname(path.dirname(dir)), { recursive: true, force: true });
  }
});
