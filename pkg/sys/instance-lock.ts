import { createServer, type Server } from "node:net";
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";

/**
 * Holds an abstract unix socket named after the root directory, so that a
 * second berthd on the same root is refused. The kernel releases the name
 * when the process dies in any way (kill -9 included): no stale lock files.
 */
export class InstanceLock {
  private constructor(private readonly server: Server) {}

  static async acquire(root: string): Promise<InstanceLock> {
    const real = realpathSync(root);
    const name = `\0berthd-root-${createHash("sha256").update(real).digest("hex").slice(0, 32)}`;
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "EADDRINUSE") reject(new Error(`another berthd is already running with root ${real}`));
        else reject(err);
      });
      server.listen(name, () => resolve());
    });
    server.unref();
    return new InstanceLock(server);
  }

  release(): void {
    this.server.close();
  }
}
