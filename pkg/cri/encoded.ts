// Responses the server sends already in wire form. The kubelet lists every pod and
// container each second; with 50 pods, encoding ListContainers' 37 KB took longer
// than the rest of the call. Each entry is encoded once per state it is listed in,
// and a list response is the concatenation of its entries (protobuf's encoding of a
// repeated message field is that of its elements, one after the other).

/** A response message already encoded: the server sends `bytes` as they are. */
export class EncodedMessage {
  constructor(readonly bytes: Buffer) {}
}

/** The wire form of `repeated M name = field;` from each element's encoded octets. */
export function encodeRepeated(field: number, elements: readonly Uint8Array[]): Buffer {
  const tag = varint((field << 3) | 2);
  let total = 0;
  const lengths = elements.map((e) => {
    const l = varint(e.length);
    total += tag.length + l.length + e.length;
    return l;
  });
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  elements.forEach((e, i) => {
    pos += tag.copy(out, pos);
    pos += (lengths[i] as Buffer).copy(out, pos);
    out.set(e, pos);
    pos += e.length;
  });
  return out;
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/**
 * Encoded octets per object, valid while the values that `key` lists are the same
 * (compared with ===): what may change about an object after it was first listed.
 */
export class EncodedCache<T extends object> {
  readonly #entries = new WeakMap<T, { key: readonly unknown[]; bytes: Uint8Array }>();

  constructor(private readonly encode: (obj: T) => Uint8Array) {}

  get(obj: T, key: readonly unknown[]): Uint8Array {
    const hit = this.#entries.get(obj);
    if (hit && hit.key.length === key.length && hit.key.every((v, i) => v === key[i])) return hit.bytes;
    const bytes = this.encode(obj);
    this.#entries.set(obj, { key, bytes });
    return bytes;
  }
}

/** The wire form of a non-negative `int64 name = field;` (omitted when 0, as proto3 does). */
export function encodeInt64(field: number, value: bigint): Buffer {
  if (value === 0n) return Buffer.alloc(0);
  if (value < 0n) throw new RangeError(`encodeInt64: ${value} is negative`);
  const bytes: number[] = [...varint(field << 3)];
  let v = value;
  while (v > 0x7fn) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Buffer.from(bytes);
}
