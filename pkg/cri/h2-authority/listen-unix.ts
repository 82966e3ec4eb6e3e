import { createServer, type Server, type Socket } from "node:net";
import { logger } from "../../log/index.js";

/**
 * A net.Server listening on the unix socket `path` (which must not exist), each accepted
 * connection handed to `onConnection`. Resolves once it listens; rejects with the listen
 * error (EADDRINUSE, EACCES, …). Errors after that are logged, not thrown.
 */
export function listenUnix(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer();
  server.on("connection", onConnection);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      server.on("error", (err) => logger().warn({ err, socket: path }, "CRI socket listener error"));
      resolve(server);
    });
  });
}
