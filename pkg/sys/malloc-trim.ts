import type Koffi from "koffi";
import { createRequire } from "node:module";

let trim: ((pad: number) => number) | null | undefined;

/**
 * glibc's malloc_trim(3): gives the free memory of every malloc arena back to the
 * kernel. Worker threads (layer download, gunzip, tar apply, hashing) allocate from
 * arenas of their own; when they exit, glibc keeps those pages, tens of MB after a
 * large pull, until something calls this. Returns false where libc has no
 * malloc_trim (musl) or FFI is unavailable; never throws.
 */
export function releaseFreeHeap(): boolean {
  if (trim === undefined) {
    try {
      const koffi = createRequire(import.meta.url)("koffi") as typeof Koffi;
      trim = koffi.load("libc.so.6").func("int malloc_trim(size_t pad)") as unknown as (pad: number) => number;
    } catch {
      trim = null;
    }
  }
  if (!trim) return false;
  return trim(0) === 1;
}
