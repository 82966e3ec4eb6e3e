/**
 * Client side of a SOCK_SEQPACKET unix socket (conmon's attach socket) as a
 * Node stream.
 *
 * Node has no API for seqpacket sockets: net.Socket({fd}) refuses them
 * (libuv classifies the fd as UNKNOWN). The socket is made and connected
 * through koffi, then given to a libuv pipe handle, which never checks the
 * socket type: each read(2) of a seqpacket socket returns one whole message
 * (libuv reads with a 64 KiB buffer, so a 'data' chunk is one message as long
 * as the stream is only consumed through 'data' events), each write(2) sends
 * one message, end() is shutdown(SHUT_WR). The event loop is never blocked.
 *
 * The path may be longer than sun_path allows: the socket is reached through
 * /proc/self/fd/<dir fd>/<name>, as conmon binds it.
 */
import type Koffi from "koffi";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { SyscallError } from "./syscalls.js";

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SUN_PATH_MAX = 108;

type Fn = (...args: unknown[]) => number;
let bound: { koffi: typeof Koffi; socket: Fn; connect: Fn; close: Fn } | undefined;

function libc(): NonNullable<typeof bound> {
  if (!bound) {
    const koffi = createRequire(import.meta.url)("koffi") as typeof Koffi;
    const lib = koffi.load("libc.so.6");
    bound = {
      koffi,
      socket: lib.func("int socket(int domain, int type, int protocol)") as Fn,
      connect: lib.func("int connect(int fd, const void *addr, uint32_t len)") as Fn,
      close: lib.func("int close(int fd)") as Fn,
    };
  }
  return bound;
}

interface PipeBinding {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

/** The libuv pipe handle class (the one net.Socket uses for unix sockets). */
function pipeBinding(): PipeBinding {
  // process.binding is deprecated documentation-only (DEP0111) but the only way
  // to hand libuv an fd whose type it does not recognise.
  return (process as unknown as { binding(name: string): PipeBinding }).binding("pipe_wrap");
}

/**
 * Connects to the seqpacket socket at socketPath. The returned socket is
 * half-open capable: end() shuts down the write side only. Throws a
 * SyscallError (code ENOENT, ECONNREFUSED, EAGAIN …) when it cannot connect.
 */
export function connectSeqpacket(socketPath: string): net.Socket {
  const c = libc();
  const dirFd = fs.openSync(path.dirname(socketPath), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  let fd = -1;
  try {
    const via = `/proc/self/fd/${dirFd}/${path.basename(socketPath)}`;
    const addr = Buffer.alloc(2 + SUN_PATH_MAX);
    addr.writeUInt16LE(AF_UNIX, 0);
    if (Buffer.byteLength(via) >= SUN_PATH_MAX) throw new Error(`socket name too long: ${socketPath}`);
    addr.write(via, 2);
    fd = c.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) throw new SyscallError("socket", c.koffi.errno(), socketPath);
    if (c.connect(fd, addr, addr.length) !== 0) throw new SyscallError("connect", c.koffi.errno(), socketPath);
    const { Pipe, constants } = pipeBinding();
    const handle = new Pipe(constants.SOCKET);
    const rc = handle.open(fd);
    if (rc !== 0) throw new SyscallError("uv_pipe_open", -rc, socketPath);
    fd = -1; // the handle owns it now
    return new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true } as net.SocketConstructorOpts);
  } finally {
    if (fd >= 0) c.close(fd);
    fs.closeSync(dirFd);
  }
}
