import type { StreamImpl, UnaryImpl } from "./instrument.js";

/** At most this many items per streamed message. */
export const STREAM_CHUNK_ITEMS = 100;
/** Start a new message before one grows past this many encoded bytes (well under gRPC's 4 MiB default). */
export const STREAM_CHUNK_BYTES = 1 << 20;

/**
 * Sends `items` as a sequence of messages, each holding at least one item (the CRI Stream* RPCs:
 * every item in exactly one message; an empty result sends no message at all, only EOF), bounded by
 * STREAM_CHUNK_ITEMS items and about STREAM_CHUNK_BYTES encoded bytes (a single larger item still
 * goes alone). Waits for `drained()` whenever `write` reports a full buffer; stops if the call ends.
 */
export async function writeChunked<T, M>(
  items: readonly T[],
  wrap: (chunk: T[]) => M,
  sizeOf: (item: T) => number,
  write: (msg: M) => boolean,
  drained: () => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  let chunk: T[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (chunk.length === 0 || signal.aborted) return;
    const full = !write(wrap(chunk));
    chunk = [];
    bytes = 0;
    if (full) await drained();
  };
  for (const item of items) {
    if (signal.aborted) return;
    const size = sizeOf(item);
    if (chunk.length >= STREAM_CHUNK_ITEMS || (chunk.length > 0 && bytes + size > STREAM_CHUNK_BYTES)) await flush();
    chunk.push(item);
    bytes += size;
  }
  await flush();
}

/**
 * A Stream* handler built on the matching List* handler: the same filters and conversion, the
 * result sent in bounded chunks. `take` picks the item array from the List response.
 */
export function streamOf<Req, ListRes, StreamReq, T, M>(
  list: UnaryImpl<Req, ListRes>,
  toListReq: (req: StreamReq) => Req,
  take: (res: ListRes) => T[] | undefined,
  wrap: (chunk: T[]) => M,
  sizeOf: (item: T) => number,
): StreamImpl<StreamReq, M> {
  return async (req, write, ctx, drained) => {
    const res = await list(toListReq(req), ctx);
    await writeChunked(take(res) ?? [], wrap, sizeOf, write, drained, ctx.signal);
  };
}
