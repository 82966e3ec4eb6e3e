import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeHeaderBlock, HpackDecoder, type HeaderField } from "./hpack.js";
import { HpackError, huffmanDecode, huffmanEncode } from "./huffman.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const pairs = (fields: HeaderField[]): [string, string][] => fields.map((f) => [f.name, f.value]);

interface Step {
  block: string;
  headers: [string, string][];
  table: [string, string][];
  size: number;
}

function series(tableSize: number, steps: Step[]): void {
  const d = new HpackDecoder({ maxTableSize: tableSize });
  for (const [i, s] of steps.entries()) {
    assert.deepEqual(pairs(d.decode(hex(s.block))), s.headers, `block ${i + 1}`);
    assert.deepEqual(d.dynamicEntries, s.table, `table after block ${i + 1}`);
    assert.equal(d.tableSize, s.size, `table size after block ${i + 1}`);
  }
}

const REQ1: [string, string][] = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]];
const REQ2: [string, string][] = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: [string, string][] = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]];
const REQ_TABLES: [string, string][][] = [
  [[":authority", "www.example.com"]],
  [["cache-control", "no-cache"], [":authority", "www.example.com"]],
  [["custom-key", "custom-value"], ["cache-control", "no-cache"], [":authority", "www.example.com"]],
];

test("RFC 7541 C.3: requests without Huffman coding", () => {
  series(4096, [
    { block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
    { block: "8286 84be 5808 6e6f 2d63 6163 6865", headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
    { block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", headers: REQ3, table: REQ_TABLES[2]!, size: 164 },
  ]);
});

test("RFC 7541 C.4: requests with Huffman coding", () => {
  series(4096, [
    { block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
    { block: "8286 84be 5886 a8eb 1064 9cbf", headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
    { block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", headers: REQ3, table: REQ_TABLES[2]!, size: 164 },
  ]);
});

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESP: [string, string][][] = [
  [[":status", "302"], ["cache-control", "private"], ["date", DATE1], ["location", LOC]],
  [[":status", "307"], ["cache-control", "private"], ["date", DATE1], ["location", LOC]],
  [[":status", "200"], ["cache-control", "private"], ["date", DATE2], ["location", LOC], ["content-encoding", "gzip"], ["set-cookie", COOKIE]],
];
const RESP_TABLES: [string, string][][] = [
  [["location", LOC], ["date", DATE1], ["cache-control", "private"], [":status", "302"]],
  // ":status 307" evicts ":status 302" (the table holds 256 octets).
  [[":status", "307"], ["location", LOC], ["date", DATE1], ["cache-control", "private"]],
  [["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE2]],
];

test("RFC 7541 C.5: responses without Huffman coding, with evictions (table of 256 octets)", () => {
  series(256, [
    {
      block: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
              2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      headers: RESP[0]!, table: RESP_TABLES[0]!, size: 222,
    },
    { block: "4803 3330 37c1 c0bf", headers: RESP[1]!, table: RESP_TABLES[1]!, size: 222 },
    {
      block: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
              54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
              5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
      headers: RESP[2]!, table: RESP_TABLES[2]!, size: 215,
    },
  ]);
});

test("RFC 7541 C.6: responses with Huffman coding, with evictions (table of 256 octets)", () => {
  series(256, [
    {
      block: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
              2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      headers: RESP[0]!, table: RESP_TABLES[0]!, size: 222,
    },
    { block: "4883 640e ffc1 c0bf", headers: RESP[1]!, table: RESP_TABLES[1]!, size: 222 },
    {
      block: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
              77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
              9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      headers: RESP[2]!, table: RESP_TABLES[2]!, size: 215,
    },
  ]);
});

test("RFC 7541 C.2: literal never indexed keeps its flag; C.2.2 literal without indexing adds nothing", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")), [{ name: "password", value: "secret", neverIndex: true }]);
  assert.deepEqual(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468")), [{ name: ":path", value: "/sample/path", neverIndex: false }]);
  assert.equal(d.tableSize, 0);
});

test("Huffman: every octet round-trips; the C.4 strings encode to the RFC's bytes", () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1");
  const coded = huffmanEncode(all);
  assert.equal(huffmanDecode(coded, 0, coded.length), all);
  assert.deepEqual(huffmanEncode("www.example.com"), hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"));
  assert.deepEqual(huffmanEncode("custom-value"), hex("25a8 49e9 5bb8 e8b4 bf"));
  for (let n = 0; n < 40; n++) {
    const s = "/run/berth/berth.sock".repeat(3).slice(0, n);
    const c = huffmanEncode(s);
    assert.equal(huffmanDecode(c, 0, c.length), s, `length ${n}`);
  }
});

test("Huffman: EOS, over-long padding and padding that is not all ones are refused", () => {
  // "a" is 00011 (5 bits): padded with 111 it is 0x1f.
  assert.equal(huffmanDecode(Buffer.from([0x1f]), 0, 1), "a");
  assert.throws(() => huffmanDecode(Buffer.from([0x18]), 0, 1), HpackError, "padding of zeros");
  assert.throws(() => huffmanDecode(Buffer.from([0x1f, 0xff]), 0, 2), HpackError, "11 bits of padding");
  assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xfc]), 0, 4), HpackError, "EOS (30 ones) in the data");
});

test("decoder: malformed blocks are refused with HpackError", () => {
  const cases: [string, string][] = [
    ["80", "index 0"],
    ["be", "dynamic index that does not exist"],
    ["ff ff ff ff ff 7f", "integer overflow"],
    ["ff", "truncated integer"],
    ["41 0a 61", "string longer than the block"],
    ["40", "literal name missing"],
    ["82 20", "table size update after a field"],
    ["3f e2 1f", "table size update to 4097, above the SETTINGS limit (4096)"],
  ];
  assert.deepEqual(pairs(new HpackDecoder().decode(hex("3f e1 1f 82"))), [[":method", "GET"]], "an update to exactly 4096 is fine");
  for (const [block, why] of cases) assert.throws(() => new HpackDecoder().decode(hex(block)), HpackError, why);
  assert.throws(() => new HpackDecoder({ maxHeaderListSize: 100 }).decode(encodeHeaderBlock([{ name: "x", value: "y".repeat(100), neverIndex: false }])), HpackError, "header list too large");
});

test("decoder: a table size update evicts; 0 empties the table", () => {
  const d = new HpackDecoder();
  d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
  assert.equal(d.tableSize, 57);
  assert.deepEqual(pairs(d.decode(hex("20 82"))), [[":method", "GET"]]);
  assert.equal(d.tableSize, 0);
  assert.throws(() => d.decode(hex("be")), HpackError, "the evicted entry is gone");
});

test("encoder: literals without indexing that a fresh decoder reads back and that leave its table empty", () => {
  const fields: HeaderField[] = [
    { name: ":method", value: "POST", neverIndex: false },
    { name: ":authority", value: "localhost", neverIndex: false },
    { name: "content-type", value: "application/grpc", neverIndex: false },
    { name: "grpc-timeout", value: "119999m", neverIndex: false },
    { name: "authorization", value: "secret", neverIndex: true },
    { name: "x-".padEnd(200, "n"), value: "v".repeat(300), neverIndex: false },
    { name: "empty", value: "", neverIndex: false },
  ];
  const block = encodeHeaderBlock(fields);
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(block), fields);
  assert.equal(d.tableSize, 0);
  // Names from the static table are referenced: ":method" is index 2 → 0x02, then "POST" raw.
  assert.deepEqual(block.subarray(0, 6), hex("02 04 504f 5354"));
  const secret = block.indexOf("secret", 0, "latin1");
  assert.deepEqual(block.subarray(secret - 3, secret), hex("1f 08 06"), "authorization (index 23) never indexed: 0x1f then 23-15=8, value length 6");
});

test("decoder: Huffman strings seen before decode the same, and a bad one is still refused after good ones", () => {
  const d = new HpackDecoder();
  // Literal without indexing, :path (static 4) as name, Huffman value; three times, as node's http2 sends it.
  const path = "/runtime.v1.RuntimeService/ListContainers";
  const coded = huffmanEncode(path);
  const block = Buffer.concat([Buffer.from([0x04, 0x80 | coded.length]), coded]);
  for (let i = 0; i < 3; i++) assert.deepEqual(pairs(d.decode(block)), [[":path", path]]);
  // Another value of the same length, differing in its octets.
  const other = huffmanEncode("/runtime.v1.RuntimeService/ListPodSandbox");
  assert.deepEqual(pairs(d.decode(Buffer.concat([Buffer.from([0x04, 0x80 | other.length]), other]))), [[":path", "/runtime.v1.RuntimeService/ListPodSandbox"]]);
  // Padding of zeros is invalid Huffman, on a decoder that has decoded valid strings.
  assert.throws(() => d.decode(Buffer.from([0x04, 0x81, 0x18])), HpackError);
  // More distinct strings than are remembered: all decode.
  for (let i = 0; i < 600; i++) {
    const v = `/svc/M${i}`;
    const c = huffmanEncode(v);
    assert.deepEqual(pairs(d.decode(Buffer.concat([Buffer.from([0x04, 0x80 | c.length]), c]))), [[":path", v]]);
  }
});
