import { HUFFMAN_CODES, HUFFMAN_EOS, HUFFMAN_LENGTHS } from "./huffman-table.js";

/** A malformed header block: the connection must be closed (HTTP/2 COMPRESSION_ERROR). */
export class HpackError extends Error {
  override readonly name = "HpackError";
}

const EOS_SYMBOL = 256;

/**
 * The decoding trie as a flat array: node n has its children at [2n] (bit 0) and
 * [2n+1] (bit 1); a child > 0 is an inner node, a child < 0 is the leaf of symbol
 * -child-1, and 0 is a code that does not exist (only reachable by bits of a
 * string that is not valid Huffman).
 */
const trie = ((): Int32Array => {
  const nodes = new Int32Array(2 * 512);
  let next = 1;
  const insert = (sym: number, code: number, length: number): void => {
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (nodes[slot] === 0) nodes[slot] = next++;
      node = nodes[slot] as number;
    }
    nodes[2 * node + (code & 1)] = -sym - 1;
  };
  for (let sym = 0; sym < 256; sym++) insert(sym, HUFFMAN_CODES[sym] as number, HUFFMAN_LENGTHS[sym] as number);
  insert(EOS_SYMBOL, HUFFMAN_EOS.code, HUFFMAN_EOS.length);
  return nodes;
})();

/**
 * Decodes a Huffman-coded string (RFC 7541 §5.2) to a latin1 string (one char per octet).
 * Rejects EOS in the data, padding longer than 7 bits and padding that is not
 * the most significant bits of EOS (all ones).
 */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  // The shortest code is 5 bits: this bounds the decoded length.
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let n = 0;
  let node = 0;
  let pending = 0; // bits read since the last complete symbol
  let ones = true; // those bits were all ones
  for (let i = start; i < end; i++) {
    const byte = buf[i] as number;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const child = trie[2 * node + bit] as number;
      if (child > 0) {
        node = child;
        pending++;
        ones &&= bit === 1;
        continue;
      }
      if (child === 0) throw new HpackError("invalid Huffman code");
      const sym = -child - 1;
      if (sym === EOS_SYMBOL) throw new HpackError("EOS in a Huffman-coded string");
      out[n++] = sym;
      node = 0;
      pending = 0;
      ones = true;
    }
  }
  if (pending > 7) throw new HpackError("Huffman padding longer than 7 bits");
  if (!ones) throw new HpackError("Huffman padding is not a prefix of EOS");
  return out.toString("latin1", 0, n);
}

/** Length in octets of the Huffman coding of a latin1 string. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff] as number;
  return (bits + 7) >>> 3;
}

/** Huffman-codes a latin1 string, padding the last octet with the high bits of EOS. */
export function huffmanEncode(s: string): Buffer {
  const out = Buffer.alloc(huffmanLength(s));
  let acc = 0; // pending bits, right-aligned
  let n = 0; // how many
  let pos = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    const code = HUFFMAN_CODES[sym] as number;
    const len = HUFFMAN_LENGTHS[sym] as number;
    // Codes are up to 30 bits: feed them in two halves so acc stays within 32 bits.
    for (const [part, bits] of len > 16 ? ([[code >>> 16, len - 16], [code & 0xffff, 16]] as const) : ([[code, len]] as const)) {
      acc = ((acc << bits) | part) >>> 0;
      n += bits;
      while (n >= 8) {
        n -= 8;
        out[pos++] = (acc >>> n) & 0xff;
      }
      acc &= (1 << n) - 1;
    }
  }
  if (n > 0) out[pos++] = ((acc << (8 - n)) | (0xff >>> n)) & 0xff;
  return out;
}
