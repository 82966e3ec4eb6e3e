// HPACK (RFC 7541): a decoder that mirrors a peer's encoder state, and an
// encoder that never touches the receiver's dynamic table. Names and values are
// latin1 strings (one char per octet) so that any octet survives unchanged.

import { HpackError, huffmanDecode } from "./huffman.js";

export interface HeaderField {
  name: string;
  value: string;
  /** The sender coded it as "never indexed" (RFC 7541 §6.2.3); kept when re-encoding. */
  neverIndex: boolean;
}

/** RFC 7541 Appendix A; index 1 is STATIC_TABLE[0]. */
// prettier-ignore
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""], ["etag", ""],
  ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""], ["if-modified-since", ""],
  ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""], ["last-modified", ""], ["link", ""],
  ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""], ["proxy-authorization", ""], ["range", ""],
  ["referer", ""], ["refresh", ""], ["retry-after", ""], ["server", ""], ["set-cookie", ""],
  ["strict-transport-security", ""], ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""], ["via", ""],
  ["www-authenticate", ""],
];

/** First static index of each name, for encoding names by reference. */
const STATIC_NAME_INDEX: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  STATIC_TABLE.forEach(([name], i) => {
    if (!m.has(name)) m.set(name, i + 1);
  });
  return m;
})();

/** Per-entry overhead of the dynamic table size (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;
const EMPTY = Buffer.alloc(0);
/** Huffman-coded strings up to this many octets are remembered, up to this many per decoder. */
const HUFFMAN_MEMO_LENGTH = 64;
const HUFFMAN_MEMO_ENTRIES = 256;
/** Integers above this are refused (no legitimate index, length or size comes close). */
const MAX_INT = 0x7fffffff;

export interface DecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE the receiver advertised: the most the encoder may use. Default 4096. */
  maxTableSize?: number;
  /** Refuse a block whose header list (name + value + 32 per field) is larger. Default 1 MiB. */
  maxHeaderListSize?: number;
}

/** Decodes the header blocks of one direction of one connection, in order. */
export class HpackDecoder {
  /** The dynamic table, oldest entry first. */
  readonly #entries: [string, string][] = [];
  #size = 0;
  #limit: number;
  readonly #settingsLimit: number;
  readonly #maxListSize: number;
  #buf: Buffer = EMPTY;
  #pos = 0;
  #end = 0;
  /**
   * Short Huffman-coded strings decoded on this connection, by their coded octets: a client
   * codes the same values again on every call (node's http2 sends :path as a literal each
   * time), and a lookup costs a fraction of decoding bit by bit.
   */
  readonly #huffmanMemo = new Map<string, string>();

  constructor(opts: DecoderOptions = {}) {
    this.#settingsLimit = opts.maxTableSize ?? 4096;
    this.#limit = this.#settingsLimit;
    this.#maxListSize = opts.maxHeaderListSize ?? 1024 * 1024;
  }

  /** Current dynamic table size in HPACK units (for tests). */
  get tableSize(): number {
    return this.#size;
  }

  /** Dynamic table entries, newest first (index 62 first), for tests. */
  get dynamicEntries(): [string, string][] {
    return [...this.#entries].reverse();
  }

  /** Decodes one complete header block (all fragments joined), updating the dynamic table. */
  decode(block: Buffer, start = 0, end = block.length): HeaderField[] {
    this.#buf = block;
    this.#pos = start;
    this.#end = end;
    const out: HeaderField[] = [];
    let listSize = 0;
    while (this.#pos < this.#end) {
      const first = block[this.#pos] as number;
      let field: HeaderField;
      if (first & 0x80) {
        const index = this.#int(7);
        if (index === 0) throw new HpackError("indexed header field with index 0");
        const [name, value] = this.#lookup(index);
        field = { name, value, neverIndex: false };
      } else if (first & 0x40) {
        field = this.#literal(6, false);
        this.#insert(field.name, field.value);
      } else if (first & 0x20) {
        if (out.length > 0) throw new HpackError("dynamic table size update after a header field");
        const size = this.#int(5);
        if (size > this.#settingsLimit) throw new HpackError(`dynamic table size update to ${size} exceeds the limit ${this.#settingsLimit}`);
        this.#limit = size;
        this.#evict(0);
        continue;
      } else {
        field = this.#literal(4, (first & 0x10) !== 0);
      }
      listSize += field.name.length + field.value.length + ENTRY_OVERHEAD;
      if (listSize > this.#maxListSize) throw new HpackError(`header list larger than ${this.#maxListSize} octets`);
      out.push(field);
    }
    this.#buf = EMPTY;
    return out;
  }

  #literal(prefix: number, neverIndex: boolean): HeaderField {
    const index = this.#int(prefix);
    const name = index === 0 ? this.#string() : this.#lookup(index)[0];
    return { name, value: this.#string(), neverIndex };
  }

  #lookup(index: number): readonly [string, string] {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as readonly [string, string];
    const entry = this.#entries[this.#entries.length - 1 - (index - STATIC_TABLE.length - 1)];
    if (!entry) throw new HpackError(`index ${index} is outside the table (${STATIC_TABLE.length} static + ${this.#entries.length} dynamic entries)`);
    return entry;
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    // An entry larger than the whole table empties it and is not added (RFC 7541 §4.4).
    if (size > this.#limit) return;
    this.#entries.push([name, value]);
    this.#size += size;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#entries.length > 0 && this.#size + room > this.#limit) {
      const [n, v] = this.#entries.shift() as [string, string];
      this.#size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }

  /** An integer with an N-bit prefix (RFC 7541 §5.1). */
  #int(prefix: number): number {
    const buf = this.#buf;
    const max = (1 << prefix) - 1;
    let value = (buf[this.#pos++] as number) & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.#pos >= this.#end) throw new HpackError("truncated integer");
      const b = buf[this.#pos++] as number;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INT) throw new HpackError("integer overflow");
      if ((b & 0x80) === 0) return value;
      shift += 7;
    }
  }

  /** A string literal (RFC 7541 §5.2), plain or Huffman-coded. */
  #string(): string {
    if (this.#pos >= this.#end) throw new HpackError("truncated header field");
    const huffman = ((this.#buf[this.#pos] as number) & 0x80) !== 0;
    const length = this.#int(7);
    const start = this.#pos;
    if (length > this.#end - start) throw new HpackError("string literal runs past the end of the block");
    this.#pos += length;
    if (!huffman) return this.#buf.toString("latin1", start, start + length);
    if (length > HUFFMAN_MEMO_LENGTH) return huffmanDecode(this.#buf, start, start + length);
    const coded = this.#buf.toString("latin1", start, start + length);
    let text = this.#huffmanMemo.get(coded);
    if (text === undefined) {
      text = huffmanDecode(this.#buf, start, start + length);
      if (this.#huffmanMemo.size >= HUFFMAN_MEMO_ENTRIES) this.#huffmanMemo.clear();
      this.#huffmanMemo.set(coded, text);
    }
    return text;
  }
}

function intLength(value: number, prefix: number): number {
  const max = (1 << prefix) - 1;
  if (value < max) return 1;
  let n = 2;
  for (let rest = value - max; rest >= 0x80; rest = Math.floor(rest / 128)) n++;
  return n;
}

function writeInt(out: Buffer, pos: number, value: number, prefix: number, flags: number): number {
  const max = (1 << prefix) - 1;
  if (value < max) {
    out[pos++] = flags | value;
    return pos;
  }
  out[pos++] = flags | max;
  let rest = value - max;
  while (rest >= 0x80) {
    out[pos++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[pos++] = rest;
  return pos;
}

/**
 * Encodes fields as literals without indexing (or never indexed, when the sender
 * said so), names by static-table reference when possible, strings uncompressed.
 * The receiver's dynamic table is never used nor changed by such a block.
 */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Buffer {
  let size = 0;
  for (const f of fields) {
    const ref = STATIC_NAME_INDEX.get(f.name);
    size += ref !== undefined ? intLength(ref, 4) : 1 + intLength(f.name.length, 7) + f.name.length;
    size += intLength(f.value.length, 7) + f.value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const f of fields) {
    const flags = f.neverIndex ? 0x10 : 0x00;
    const ref = STATIC_NAME_INDEX.get(f.name);
    if (ref !== undefined) {
      pos = writeInt(out, pos, ref, 4, flags);
    } else {
      out[pos++] = flags;
      pos = writeInt(out, pos, f.name.length, 7, 0);
      pos += out.write(f.name, pos, "latin1");
    }
    pos = writeInt(out, pos, f.value.length, 7, 0);
    pos += out.write(f.value, pos, "latin1");
  }
  return out;
}
