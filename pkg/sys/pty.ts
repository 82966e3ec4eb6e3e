/**
 * Pseudo-terminals from Node: open a pair (posix_openpt through koffi), size
 * it, and read/write the master without blocking the event loop.
 *
 * Node wraps a tty fd in a libuv TTY handle whose writes block when the fd is
 * a pty master (libuv cannot reopen a master), so the master is read through
 * a tty.ReadStream with O_NONBLOCK set and written with fs.write, retrying on
 * EAGAIN with a short timer instead of spinning.
 */
import fs from "node:fs";
import { Duplex } from "node:stream";
import tty from "node:tty";
import koffi from "koffi";

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const F_GETFL = 3;
const F_SETFL = 4;
const TIOCSWINSZ = 0x5414;

interface Libc {
  posix_openpt: (flags: number) => number;
  grantpt: (fd: number) => number;
  unlockpt: (fd: number) => number;
  ptsname_r: (fd: number, buf: Buffer, len: number) => number;
  fcntl: (fd: number, cmd: number, ...rest: unknown[]) => number;
  ioctl: (fd: number, req: number, ...rest: unknown[]) => number;
  tcgetattr: (fd: number, termios: Buffer) => number;
  tcsetattr: (fd: number, action: number, termios: Buffer) => number;
  cfmakeraw: (termios: Buffer) => void;
  errno: () => number;
}

let libc: Libc | undefined;

function lib(): Libc {
  if (libc) return libc;
  const l = koffi.load("libc.so.6");
  libc = {
    posix_openpt: l.func("int posix_openpt(int flags)") as Libc["posix_openpt"],
    grantpt: l.func("int grantpt(int fd)") as Libc["grantpt"],
    unlockpt: l.func("int unlockpt(int fd)") as Libc["unlockpt"],
    ptsname_r: l.func("int ptsname_r(int fd, _Out_ uint8_t *buf, size_t len)") as Libc["ptsname_r"],
    fcntl: l.func("int fcntl(int fd, int cmd, ...)") as Libc["fcntl"],
    ioctl: l.func("int ioctl(int fd, unsigned long req, ...)") as Libc["ioctl"],
    tcgetattr: l.func("int tcgetattr(int fd, _Inout_ uint8_t *termios)") as Libc["tcgetattr"],
    tcsetattr: l.func("int tcsetattr(int fd, int action, const uint8_t *termios)") as Libc["tcsetattr"],
    cfmakeraw: l.func("void cfmakeraw(_Inout_ uint8_t *termios)") as Libc["cfmakeraw"],
    errno: () => koffi.errno(),
  };
  return libc;
}

function check(rc: number, what: string): number {
  if (rc < 0) throw new Error(`${what} failed: errno ${lib().errno()}`);
  return rc;
}

/** glibc's struct termios is 60 bytes on Linux; a larger buffer is harmless. */
const TERMIOS_BYTES = 64;
const TCSANOW = 0;

/**
 * Puts a terminal fd in raw mode (no echo, no line editing, no output
 * translation such as \n → \r\n). For a pty whose slave is handed to a process
 * that relays another terminal's output, so bytes pass through unchanged.
 */
export function setRawMode(fd: number): void {
  const termios = Buffer.alloc(TERMIOS_BYTES);
  check(lib().tcgetattr(fd, termios), "tcgetattr");
  lib().cfmakeraw(termios);
  check(lib().tcsetattr(fd, TCSANOW, termios), "tcsetattr");
}

export interface PtyPair {
  /** The master fd (owned by the caller until handed to PtyMaster). */
  master: number;
  /** Path of the slave device, e.g. /dev/pts/7. */
  slavePath: string;
}

/** Opens a new pty pair; the master is close-on-exec. */
export function openPty(): PtyPair {
  const c = lib();
  const master = check(c.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), "posix_openpt");
  try {
    check(c.grantpt(master), "grantpt");
    check(c.unlockpt(master), "unlockpt");
    const buf = Buffer.alloc(128);
    const rc = c.ptsname_r(master, buf, buf.length);
    if (rc !== 0) throw new Error(`ptsname_r failed: errno ${rc}`);
    const slavePath = buf.subarray(0, buf.indexOf(0)).toString("utf8");
    return { master, slavePath };
  } catch (err) {
    fs.closeSync(master);
    throw err;
  }
}

/** Sets the window size of a terminal (master or slave fd). */
export function setWindowSize(fd: number, columns: number, rows: number): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows & 0xffff, 0);
  ws.writeUInt16LE(columns & 0xffff, 2);
  check(lib().ioctl(fd, TIOCSWINSZ, "void *", ws), "ioctl(TIOCSWINSZ)");
}

export function setNonBlocking(fd: number): void {
  const c = lib();
  const flags = check(c.fcntl(fd, F_GETFL), "fcntl(F_GETFL)");
  check(c.fcntl(fd, F_SETFL, "int", flags | O_NONBLOCK), "fcntl(F_SETFL)");
}

/**
 * A Duplex over a pty master fd. Takes ownership of the fd: destroying the
 * stream closes it. Reading ends (EIO) once every slave fd is closed.
 */
export class PtyMaster extends Duplex {
  readonly fd: number;
  #reader: tty.ReadStream;
  #closed = false;

  constructor(fd: number) {
    super({ allowHalfOpen: true });
    this.fd = fd;
    setNonBlocking(fd);
    this.#reader = new tty.ReadStream(fd);
    this.#reader.on("data", (c: Buffer) => {
      if (!this.push(c)) this.#reader.pause();
    });
    const end = () => this.push(null);
    this.#reader.on("end", end);
    // EIO when the slave side is gone: that is the end of the output.
    this.#reader.on("error", end);
    this.#reader.on("close", end);
    this.on("error", () => undefined);
  }

  override _read(): void {
    this.#reader.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    let off = 0;
    let delay = 1;
    const step = () => {
      if (this.#closed) return cb(new Error("pty is closed"));
      fs.write(this.fd, chunk, off, chunk.length - off, null, (err, n) => {
        if (err && (err as NodeJS.ErrnoException).code === "EAGAIN") {
          setTimeout(step, delay);
          delay = Math.min(delay * 2, 50);
          return;
        }
        if (err) return cb(err);
        off += n;
        delay = 1;
        if (off < chunk.length) step();
        else cb();
      });
    };
    step();
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  resize(columns: number, rows: number): void {
    if (!this.#closed) setWindowSize(this.fd, columns, rows);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#closed = true;
    // The ReadStream owns the fd and closes it.
    this.#reader.destroy();
    cb(err);
  }
}
