export { AnyAuthorityListener, type ConnectionInjector, type ListenerOptions } from "./listener.js";
export { ConnectionSniffer, EMPTY_SETTINGS, type SniffOutcome } from "./sniff.js";
export { ClientFrameFilter, FrameFilterError, type FrameFilterOptions } from "./frame-filter.js";
export { FALLBACK_AUTHORITY, isValidAuthority, normaliseAuthority } from "./authority.js";
export { encodeHeaderBlock, HpackDecoder, STATIC_TABLE, type HeaderField } from "./hpack.js";
export { HpackError, huffmanDecode, huffmanEncode } from "./huffman.js";
