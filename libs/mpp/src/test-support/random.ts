/** Seeded pseudo-random inputs for the byte-for-byte equality tests (mulberry32: reproducible failures). */
export function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)]!;
  const bool = (p = 0.5) => next() < p;

  /** Characters that exercise every escaping rule: ASCII, quotes, backslash, Latin-1, BMP, astral, lone surrogates. */
  const ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz0123456789.-:",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ $%&'()*+,/;<=>?@[]^_`{|}~",
    '"\\',
    "\u00a0é\u00ff\u0080\u009f\t\u0001\u001f\u007f",
    "\u0100€—“”…\u2028\u2029\uffff\ufeff中文",
    "😀🚀𝄞",
    "\ud800\udbff\udc00\udfff",
  ];
  const string = (maxLength = 24, alphabets: readonly string[] = ALPHABETS) => {
    let out = "";
    const length = int(0, maxLength);
    for (let i = 0; i < length; i++) {
      const alphabet = Array.from(pick(alphabets));
      out += pick(alphabet);
    }
    return out;
  };
  const hex = (bytes: number) => {
    let out = "0x";
    for (let i = 0; i < bytes * 2; i++) out += pick(Array.from("0123456789abcdefABCDEF"));
    return out as `0x${string}`;
  };
  const bigint = (maxBits: number) => {
    let value = 0n;
    const bits = int(0, maxBits);
    for (let i = 0; i < bits; i++) value = (value << 1n) | (bool() ? 1n : 0n);
    return value;
  };
  const base64 = (bytes: number) => Buffer.from(Array.from({ length: bytes }, () => int(0, 255))).toString("base64");

  const NUMBERS = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 123456789.125, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -1.5e-300, 4217];
  /** JSON-ish values, nested, with the shapes ox's canonicalize treats specially (undefined members, -0, arrays). */
  const json = (depth = 3): unknown => {
    const kind = int(0, depth > 0 ? 7 : 4);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return bool();
      case 2:
        return bool() ? pick(NUMBERS) : (next() - 0.5) * 10 ** int(-5, 25);
      case 3:
      case 4:
        return string(16);
      case 5:
        return Array.from({ length: int(0, 4) }, () => (bool(0.1) ? undefined : json(depth - 1)));
      default: {
        const out: Record<string, unknown> = {};
        for (let i = int(0, 5); i > 0; i--) out[string(8)] = bool(0.1) ? undefined : json(depth - 1);
        return out;
      }
    }
  };
  return { next, int, pick, bool, string, hex, bigint, base64, json };
}
