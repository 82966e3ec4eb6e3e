/** JSON that round-trips bigint values (CRI timestamps and int64 fields). */
export function stringifyWithBigint(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? { $bigint: x.toString() } : x));
}

export function parseWithBigint<T>(s: string): T {
  return JSON.parse(s, (_k, x: unknown) => {
    if (x && typeof x === "object" && !Array.isArray(x)) {
      const o = x as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === "$bigint" && typeof o["$bigint"] === "string") return BigInt(o["$bigint"]);
    }
    return x;
  }) as T;
}
