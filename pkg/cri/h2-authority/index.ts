export { AnyAuthorityListener, type ConnectionInjector } from "./listener.js";
export { ClientFrameFilter, FrameFilterError, type FrameFilterOptions } from "./frame-filter.js";
export { FALLBACK_AUTHORITY, isValidAuthority, normaliseAuthority } from "./authority.js";
export { encodeHeaderBlock, HpackDecoder, STATIC_TABLE, type HeaderField } from "./hpack.js";
export { HpackError, huffmanDecode, huffmanEncode } from "./huffman.js";
