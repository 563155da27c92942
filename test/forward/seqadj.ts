// Sequence adjustment after a header inserted at the start of the client's byte stream:
// the mapping rules, in-place rewrites checked against a full checksum recompute written
// here independently of wire/checksum.ts, malformed-option fuzzing, the insertion helper,
// and a whole connection replayed through the rules and reassembled on the server side.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  SEQADJ_INSERT, SEQADJ_KEEP, SEQADJ_SHIFT, seqAdjAck, seqAdjAction, seqAdjClient, seqAdjSeq, seqAdjServer, tcpInsertPayload,
} from "../../src/forward/seqadj.ts";
import { proxyV1Write } from "../../src/wire/proxy_protocol.ts";
import { ip4, ip6, rng } from "../fixtures/builder.ts";

const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20;
const POISON = 0xa5;

// --- reference checksum: a plain sum of big-endian words, folded at the end.
function refSum(u8: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (u8[off + i] << 8) | (i + 1 < len ? u8[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}
function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

interface Seg {
  v6?: boolean;
  /** IPv6 only: put an 8-byte hop-by-hop options header before TCP. */
  ext?: boolean;
  seq: number;
  ack?: number;
  flags: number;
  /** Raw option bytes, padded with zeros (EOL) to a multiple of 4. */
  opts?: number[];
  payload?: Uint8Array | string;
  urg?: number;
}
interface Built { u8: Uint8Array; l3: number; l4: number; l4len: number; end: number }

const SRC4 = ip4("198.18.0.2"), DST4 = ip4("198.18.1.11");
const SRC6 = ip6("2001:2::2"), DST6 = ip6("2001:2:0:1::11");

/** A segment at u8[at] with `room` poisoned bytes after it; all checksums by the reference sum. */
function build(s: Seg, at = 8, room = 16): Built {
  const payload = typeof s.payload === "string" ? new TextEncoder().encode(s.payload) : (s.payload ?? new Uint8Array(0));
  const opts = s.opts ?? [];
  const optLen = (opts.length + 3) & ~3;
  const ipHdr = s.v6 ? 40 + (s.ext ? 8 : 0) : 20;
  const l4len = 20 + optLen + payload.length;
  const u8 = new Uint8Array(at + ipHdr + l4len + room).fill(POISON);
  const dv = new DataView(u8.buffer);
  const l3 = at, l4 = at + ipHdr;
  u8.fill(0, l3, l4 + l4len);
  if (s.v6) {
    dv.setUint32(l3, 0x60000000);
    dv.setUint16(l3 + 4, ipHdr - 40 + l4len);
    u8[l3 + 6] = s.ext ? 0 : 6;
    u8[l3 + 7] = 64;
    for (let w = 0; w < 4; w++) { dv.setInt32(l3 + 8 + 4 * w, SRC6[w]); dv.setInt32(l3 + 24 + 4 * w, DST6[w]); }
    if (s.ext) { u8[l3 + 40] = 6; u8[l3 + 41] = 0; u8[l3 + 42] = 1; u8[l3 + 43] = 4; } // PadN
  } else {
    u8[l3] = 0x45;
    dv.setUint16(l3 + 2, 20 + l4len);
    dv.setUint16(l3 + 4, 0x1234);
    u8[l3 + 8] = 64;
    u8[l3 + 9] = 6;
    dv.setInt32(l3 + 12, SRC4);
    dv.setInt32(l3 + 16, DST4);
    dv.setUint16(l3 + 10, ~refSum(u8, l3, 20) & 0xffff);
  }
  dv.setUint16(l4, 40000);
  dv.setUint16(l4 + 2, 8080);
  dv.setUint32(l4 + 4, s.seq >>> 0);
  dv.setUint32(l4 + 8, (s.ack ?? 0) >>> 0);
  u8[l4 + 12] = ((20 + optLen) / 4) << 4;
  u8[l4 + 13] = s.flags;
  dv.setUint16(l4 + 14, 64240);
  dv.setUint16(l4 + 18, s.urg ?? 0);
  u8.set(opts, l4 + 20);
  u8.set(payload, l4 + 20 + optLen);
  dv.setUint16(l4 + 16, ~tcpSum(u8, l3, l4, l4len) & 0xffff);
  return { u8, l3, l4, l4len, end: l4 + l4len };
}

/** Pseudo-header plus segment sum (reference); a valid segment sums to 0xffff. */
function tcpSum(u8: Uint8Array, l3: number, l4: number, l4len: number): number {
  const v6 = u8[l3] >> 4 === 6;
  const pseudo = v6 ? refSum(u8, l3 + 8, 32) : refSum(u8, l3 + 12, 8);
  return fold(pseudo + 6 + l4len + refSum(u8, l4, l4len));
}

/** Every length and checksum of the packet at l3 agree; returns the TCP segment length. */
function assertValid(u8: Uint8Array, l3: number, l4: number, msg = ""): number {
  const dv = new DataView(u8.buffer, u8.byteOffset);
  let l4len: number;
  if (u8[l3] >> 4 === 4) {
    assert.is(refSum(u8, l3, 20), 0xffff, `IPv4 header checksum ${msg}`);
    l4len = dv.getUint16(l3 + 2) - (l4 - l3);
  } else {
    l4len = 40 + dv.getUint16(l3 + 4) - (l4 - l3);
  }
  assert.is(tcpSum(u8, l3, l4, l4len), 0xffff, `TCP checksum ${msg}`);
  return l4len;
}

/** A SACK option (kind 5) with the given edges, big-endian. */
function sack(...edges: number[]): number[] {
  const o = [5, 2 + 4 * edges.length];
  for (const e of edges) o.push((e >>> 24) & 0xff, (e >>> 16) & 0xff, (e >>> 8) & 0xff, e & 0xff);
  return o;
}
const u32 = (u8: Uint8Array, at: number) => new DataView(u8.buffer, u8.byteOffset).getUint32(at);

// ---
const map = suite("seqadj: mapping rules");
map("client seq: unchanged up to isn+1, +delta after, mod 2^32", () => {
  const isn = 1000, d = 28;
  assert.is(seqAdjSeq(1000, isn, d), 1000); // SYN
  assert.is(seqAdjSeq(1001, isn, d), 1001); // the insertion point itself (or a pure ACK there)
  assert.is(seqAdjSeq(1002, isn, d), 1030);
  assert.is(seqAdjSeq(999, isn, d), 999);
  const hi = 0xfffffff0; // isn+1 = 0xfffffff1; the stream wraps 15 bytes later
  assert.is(seqAdjSeq(0xfffffff6, hi, d), 0x12);
  assert.is(seqAdjSeq(0xffffffff, hi, d), 27);
  assert.is(seqAdjSeq(0x00000005, hi, d), 0x21);
  assert.is(seqAdjSeq(0xfffffff1, hi, d), 0xfffffff1);
  assert.is(seqAdjSeq(0, 0xffffffff, 100), 0); // isn+1 wraps to 0
  assert.is(seqAdjSeq(1, 0xffffffff, 100), 101);
  assert.is(seqAdjSeq(0xfffffff0, 0xffffffff, 100), 0xfffffff0); // before isn+1: untouched
  assert.is(seqAdjSeq(1030, isn | 0, d), 1058); // isn given as int32 is the same
  assert.is(seqAdjSeq(0xfffffff6 | 0, hi | 0, d), 0x12);
});
map("server ack and SACK edges: −delta past the header, isn+1 inside it", () => {
  const isn = 1000, d = 28;
  assert.is(seqAdjAck(1001, isn, d), 1001); // acks only the SYN
  assert.is(seqAdjAck(1002, isn, d), 1001); // inside the header: clamped
  assert.is(seqAdjAck(1028, isn, d), 1001);
  assert.is(seqAdjAck(1029, isn, d), 1001); // exactly the whole header
  assert.is(seqAdjAck(1030, isn, d), 1002); // the header and the client's first byte
  assert.is(seqAdjAck(900, isn, d), 900); // before isn+1 (D-SACK of old data, bogus): untouched
  const hi = 0xfffffff0;
  assert.is(seqAdjAck(0x12, hi, d), 0xfffffff6);
  assert.is(seqAdjAck(0x0c, hi, d), 0xfffffff1); // 0xfffffff1 + 27 wraps to 0x0c: still the header
  assert.is(seqAdjAck(0x0d, hi, d), 0xfffffff1);
  assert.is(seqAdjAck(0x0e, hi, d), 0xfffffff2);
  const r = rng(3);
  for (let n = 0; n < 10000; n++) {
    const i = Math.floor(r() * 2 ** 32), dd = 1 + Math.floor(r() * 107), k = Math.floor(r() * 2 ** 30);
    const s = (i + 1 + k) >>> 0;
    // A client byte's seq shifted, then acked back, is the same seq (inverse mapping).
    assert.is(seqAdjAck(k === 0 ? (s + dd) >>> 0 : seqAdjSeq(s, i, dd), i, dd), s);
  }
});
map("which client segments are shifted, kept or get the header", () => {
  const isn = 5000;
  const cases: [string, number, number, number, number][] = [
    ["SYN", 5000, SYN, 0, SEQADJ_KEEP],
    ["handshake ACK", 5001, ACK, 0, SEQADJ_KEEP],
    ["first data", 5001, ACK | PSH, 10, SEQADJ_INSERT],
    ["retransmitted first data", 5001, ACK, 200, SEQADJ_INSERT],
    ["FIN before any data", 5001, ACK | FIN, 0, SEQADJ_INSERT],
    ["RST before any data", 5001, RST | ACK, 0, SEQADJ_KEEP],
    ["RST with data at isn+1", 5001, RST, 3, SEQADJ_KEEP],
    ["keepalive of an idle client", 5000, ACK, 0, SEQADJ_KEEP],
    ["later data", 5011, ACK, 100, SEQADJ_SHIFT],
    ["pure ACK after data", 5011, ACK, 0, SEQADJ_SHIFT],
    ["FIN after data", 5111, ACK | FIN, 0, SEQADJ_SHIFT],
    ["RST after data", 5111, RST, 0, SEQADJ_SHIFT],
    ["keepalive after 1 byte (seq isn+1, no data)", 5001, ACK, 0, SEQADJ_KEEP],
  ];
  for (const [name, seq, flags, len, want] of cases) assert.is(seqAdjAction(seq, flags, len, isn), want, name);
  assert.is(seqAdjAction(0, ACK, 1, 0xffffffff), SEQADJ_INSERT);
  assert.is(seqAdjAction(1, ACK, 0, 0xffffffff), SEQADJ_SHIFT);
  assert.is(seqAdjAction(0xffffffff, SYN, 0, 0xffffffff), SEQADJ_KEEP);
});
map.run();

// ---
const client = suite("seqadj: client→server in place");
client("shift: seq and checksum, IPv4 and IPv6, options and wraparound; SACK and ack untouched", () => {
  const isn = 0xfffffff0, d = 57;
  for (const v6 of [false, true]) {
    const opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, ...sack(0x80000000, 0x80000010)];
    const b = build({ v6, ext: v6, seq: 0xfffffffa, ack: 0x7fffffff, flags: ACK | PSH, opts, payload: "hello, world" });
    const before = b.u8.slice();
    assert.is(seqAdjClient(b.u8, b.l4, b.l4len, isn, d), SEQADJ_SHIFT);
    assert.is(u32(b.u8, b.l4 + 4), (0xfffffffa + 57) % 2 ** 32);
    assertValid(b.u8, b.l3, b.l4, v6 ? "v6" : "v4");
    for (let i = 0; i < b.u8.length; i++) {
      if ((i >= b.l4 + 4 && i < b.l4 + 8) || i === b.l4 + 16 || i === b.l4 + 17) continue;
      assert.is(b.u8[i], before[i], `byte ${i} changed`);
    }
  }
});
client("keep and insert leave the packet alone", () => {
  for (const [seq, flags, payload, want] of [[100, SYN, "", SEQADJ_KEEP], [101, ACK, "", SEQADJ_KEEP], [101, ACK, "GET", SEQADJ_INSERT]] as const) {
    const b = build({ seq, flags, payload });
    const before = b.u8.slice();
    assert.is(seqAdjClient(b.u8, b.l4, b.l4len, 100, 40), want);
    assert.equal(b.u8, before);
  }
});
client("10 000 random segments: seq by the rule, checksum valid", () => {
  const r = rng(1624);
  for (let n = 0; n < 10000; n++) {
    const isn = Math.floor(r() * 2 ** 32), d = 1 + Math.floor(r() * 107);
    const rel = r() < 0.2 ? Math.floor(r() * 3) - 1 : Math.floor(r() * 2 ** 32);
    const seq = (isn + 1 + rel) >>> 0;
    const flags = [ACK, ACK | PSH, SYN, FIN | ACK, RST][Math.floor(r() * 5)];
    const payload = new Uint8Array(r() < 0.3 ? 0 : Math.floor(r() * 64)).map(() => Math.floor(r() * 256));
    const opts = r() < 0.5 ? [] : [1, 1, 8, 10, ...Array.from({ length: 8 }, () => Math.floor(r() * 256))];
    const b = build({ v6: r() < 0.5, seq, ack: Math.floor(r() * 2 ** 32), flags, opts, payload });
    const act = seqAdjClient(b.u8, b.l4, b.l4len, isn, d);
    assert.is(act, seqAdjAction(seq, flags, payload.length, isn));
    assert.is(u32(b.u8, b.l4 + 4), act === SEQADJ_SHIFT ? (seq + d) % 2 ** 32 : seq);
    assertValid(b.u8, b.l3, b.l4, `case ${n}`);
  }
});
client.run();

// ---
const server = suite("seqadj: server→client in place");
server("ack and two SACK blocks (NOP NOP SACK after timestamps)", () => {
  const isn = 1000, d = 28;
  const opts = [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, ...sack(2000, 2100, 1010, 1020)];
  const b = build({ seq: 777, ack: 1529, flags: ACK, opts, payload: "response" });
  const before = b.u8.slice();
  seqAdjServer(b.u8, b.l4, b.l4len, isn, d);
  assert.is(u32(b.u8, b.l4 + 4), 777); // the server's own seq never changes
  assert.is(u32(b.u8, b.l4 + 8), 1501);
  const s = b.l4 + 20 + 14 + 2;
  assert.equal([u32(b.u8, s), u32(b.u8, s + 4), u32(b.u8, s + 8), u32(b.u8, s + 12)], [1972, 2072, 1001, 1001]);
  assertValid(b.u8, b.l3, b.l4);
  // Everything else, timestamps included, is as it was.
  for (let i = 0; i < b.u8.length; i++) {
    const inAck = i >= b.l4 + 8 && i < b.l4 + 12, inCsum = i === b.l4 + 16 || i === b.l4 + 17, inSack = i >= s && i < s + 16;
    if (!inAck && !inCsum && !inSack) assert.is(b.u8[i], before[i], `byte ${i}`);
  }
});
server("SACK at an odd offset, wraparound, IPv6 with an extension header", () => {
  const isn = 0xffffffe0, d = 104;
  // One NOP puts the SACK option at offset 21: its edges at odd offsets 23, 27, 31, 35.
  const edges = [0x00000100, 0x00000200, 0xfffffff0, 0x00000010];
  const b = build({ v6: true, ext: true, seq: 5, ack: 0x00000050, flags: ACK, opts: [1, ...sack(...edges)] });
  seqAdjServer(b.u8, b.l4, b.l4len, isn, d);
  assert.is(u32(b.u8, b.l4 + 8), (0x50 - 104 + 2 ** 32) % 2 ** 32);
  const e = b.l4 + 23;
  assert.equal([u32(b.u8, e), u32(b.u8, e + 4), u32(b.u8, e + 8), u32(b.u8, e + 12)],
    [0x100 - 104, 0x200 - 104, 0xffffffe1, 0xffffffe1]); // the last two fall inside the header (it ends at 0x49)
  assertValid(b.u8, b.l3, b.l4);
});
server("no ACK flag: the ack field is left alone; ack inside the header clamps", () => {
  const b = build({ seq: 1, ack: 5000, flags: SYN });
  const before = b.u8.slice();
  seqAdjServer(b.u8, b.l4, b.l4len, 100, 10);
  assert.equal(b.u8, before);
  const c = build({ seq: 1, ack: 105, flags: ACK });
  seqAdjServer(c.u8, c.l4, c.l4len, 100, 10);
  assert.is(u32(c.u8, c.l4 + 8), 101);
  assertValid(c.u8, c.l3, c.l4);
});
server("malformed SACK lengths are skipped; parsing stops at EOL, a short length or an overrun", () => {
  const isn = 100, d = 10;
  const run = (opts: number[]) => {
    const b = build({ seq: 1, ack: 200, flags: ACK, opts });
    seqAdjServer(b.u8, b.l4, b.l4len, isn, d);
    assertValid(b.u8, b.l3, b.l4);
    return Array.from(b.u8.subarray(b.l4 + 20, b.l4 + b.l4len));
  };
  const pad = (o: number[]) => [...o, ...new Array(((o.length + 3) & ~3) - o.length).fill(0)];
  assert.equal(run([5, 6, 0, 0, 1, 0]), pad([5, 6, 0, 0, 1, 0])); // 2+4: not 2+8n
  assert.equal(run([0, ...sack(300, 400)]), pad([0, ...sack(300, 400)])); // after EOL
  assert.equal(run([4, 0, ...sack(300, 400)]), pad([4, 0, ...sack(300, 400)])); // length 0
  assert.equal(run([4, 1, ...sack(300, 400)]), pad([4, 1, ...sack(300, 400)])); // length 1
  assert.equal(run([5, 18, ...sack(300, 400).slice(2)]), pad([5, 18, ...sack(300, 400).slice(2)])); // runs past the header
  assert.equal(run([4, 2, 1, ...sack(300, 400)]), pad([4, 2, 1, ...sack(290, 390)])); // SACK-permitted, NOP, SACK
});
server("fuzz: random option bytes and data offsets never throw, stay inside the header, match a reference", () => {
  const r = rng(99);
  let sackRewrites = 0;
  for (let n = 0; n < 20000; n++) {
    const isn = Math.floor(r() * 2 ** 32), d = 1 + Math.floor(r() * 107);
    const nOpt = Math.floor(r() * 41);
    const opts: number[] = [];
    while (opts.length < nOpt) {
      const x = r();
      if (x < 0.15) opts.push(1);
      else if (x < 0.2) opts.push(0);
      else if (x < 0.6) {
        const blocks = Math.floor(r() * 5);
        opts.push(5, r() < 0.8 ? 2 + 8 * blocks : Math.floor(r() * 40));
        for (let k = 0; k < 8 * blocks; k++) opts.push(r() < 0.5 ? ((isn + 1) >>> (8 * (3 - (k % 4)))) & 0xff : Math.floor(r() * 256));
      } else opts.push(Math.floor(r() * 256));
    }
    opts.length = Math.min(opts.length, 40);
    const b = build({ v6: r() < 0.5, seq: 1, ack: (isn + Math.floor(r() * 300)) >>> 0, flags: r() < 0.8 ? ACK : 0, opts }, 8, 0);
    // Sometimes lie in the data offset (past the packet, below 20) or in the length passed.
    if (r() < 0.2) {
      b.u8[b.l4 + 12] = Math.floor(r() * 16) << 4;
      b.u8[b.l4 + 16] = 0; b.u8[b.l4 + 17] = 0;
      const c = ~tcpSum(b.u8, b.l3, b.l4, b.l4len) & 0xffff;
      b.u8[b.l4 + 16] = c >> 8; b.u8[b.l4 + 17] = c & 0xff;
    }
    const l4len = r() < 0.1 ? Math.floor(r() * b.l4len) : b.l4len;
    const before = b.u8.slice();
    const want = refServer(before, b.l4, l4len, isn, d);
    seqAdjServer(b.u8, b.l4, l4len, isn, d);
    const doff = (b.u8[b.l4 + 12] >> 4) * 4;
    if (b.u8.subarray(b.l4 + 20).some((x, i) => x !== before[b.l4 + 20 + i])) sackRewrites++;
    for (let i = 0; i < b.u8.length; i++) {
      if (i === b.l4 + 16 || i === b.l4 + 17) continue;
      assert.is(b.u8[i], want[i], `case ${n}: byte ${i}`);
    }
    // The checksum covers the whole segment, whatever part of it was parsed.
    assertValid(b.u8, b.l3, b.l4, `case ${n}`);
    if (doff < 20 || doff > l4len) assert.equal(b.u8, before, `case ${n}: a bad header is not touched`);
  }
  assert.ok(sackRewrites > 2000, `only ${sackRewrites} cases rewrote a SACK edge`);
});
server.run();

/** Reference of seqAdjServer without checksums: Linux tcp_parse_options' walk, written plainly. */
function refServer(src: Uint8Array, l4: number, l4len: number, isn: number, d: number): Uint8Array {
  const u8 = src.slice();
  const dv = new DataView(u8.buffer);
  const doff = (u8[l4 + 12] >> 4) * 4;
  if (l4len < 20 || doff < 20 || doff > l4len || l4 + doff > u8.length) return u8;
  const map = (e: number) => {
    const rel = (e - isn - 1) | 0;
    return rel <= 0 ? e : rel < d ? (isn + 1) >>> 0 : (e - d) >>> 0;
  };
  if (u8[l4 + 13] & ACK) dv.setUint32(l4 + 8, map(dv.getUint32(l4 + 8)));
  const opts = Array.from(u8.subarray(l4 + 20, l4 + doff));
  let i = 0;
  while (i < opts.length) {
    if (opts[i] === 0) break;
    if (opts[i] === 1) { i++; continue; }
    if (i + 1 >= opts.length) break;
    const len = opts[i + 1];
    if (len < 2 || i + len > opts.length) break;
    if (opts[i] === 5 && len >= 10 && (len - 2) % 8 === 0) {
      for (let k = i + 2; k < i + len; k += 4) dv.setUint32(l4 + 20 + k, map(dv.getUint32(l4 + 20 + k)));
    }
    i += len;
  }
  return u8;
}

// ---
const ins = suite("seqadj: inserting the header");
ins("IPv4: payload moved, header written, lengths and checksums right, guard bytes untouched", () => {
  const hdr = new TextEncoder().encode("PROXY TCP4 198.18.0.2 198.18.0.100 40000 80\r\n");
  const b = build({ seq: 1001, ack: 9, flags: ACK | PSH | URG, urg: 3, opts: [2, 4, 5, 0xb4], payload: "GET / HTTP/1.0\r\n\r\n" }, 8, 64);
  const origLen = b.end - b.l3;
  const payload = b.u8.slice(b.l4 + 24, b.end);
  const total = tcpInsertPayload(b.u8, b.l3, b.l4, hdr, 0, hdr.length);
  assert.is(total, origLen + hdr.length);
  const dv = new DataView(b.u8.buffer);
  assert.is(dv.getUint16(b.l3 + 2), total);
  assert.is(assertValid(b.u8, b.l3, b.l4), b.l4len + hdr.length);
  assert.is(u32(b.u8, b.l4 + 4), 1001);
  assert.is(dv.getUint16(b.l4 + 18), 3 + hdr.length);
  assert.equal(Array.from(b.u8.subarray(b.l4 + 20, b.l4 + 24)), [2, 4, 5, 0xb4]);
  assert.equal(b.u8.subarray(b.l4 + 24, b.l4 + 24 + hdr.length), hdr);
  assert.equal(b.u8.subarray(b.l4 + 24 + hdr.length, b.l3 + total), payload);
  assert.ok(b.u8.subarray(b.l3 + total).every((x) => x === POISON));
  assert.ok(b.u8.subarray(0, b.l3).every((x) => x === POISON));
});
ins("IPv6 with an extension header; the header may come from the same buffer's spare area", () => {
  const b = build({ v6: true, ext: true, seq: 0xffffffff, flags: ACK, payload: "ping" }, 8, 200);
  // Write a v1 header into the tail of the same buffer, clear of the bytes that will move.
  const at = b.u8.length - 110;
  const s = SRC6, t = DST6;
  const n = proxyV1Write(b.u8, at, 6, s[0], s[1], s[2], s[3], t[0], t[1], t[2], t[3], 40000, 8080);
  assert.is(n, "PROXY TCP6 2001:2::2 2001:2:0:1::11 40000 8080\r\n".length);
  const total = tcpInsertPayload(b.u8, b.l3, b.l4, b.u8, at, n);
  assert.is(total, b.end - b.l3 + n);
  assert.is(new DataView(b.u8.buffer).getUint16(b.l3 + 4), total - 40);
  assertValid(b.u8, b.l3, b.l4);
  const data = new TextDecoder().decode(b.u8.subarray(b.l4 + 20, b.l3 + total));
  assert.is(data, "PROXY TCP6 2001:2::2 2001:2:0:1::11 40000 8080\r\nping");
});
ins("FIN without data gets the header as its payload", () => {
  const hdr = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
  const b = build({ seq: 43, flags: FIN | ACK }, 0, 28);
  assert.is(seqAdjClient(b.u8, b.l4, b.l4len, 42, hdr.length), SEQADJ_INSERT);
  assert.is(tcpInsertPayload(b.u8, b.l3, b.l4, hdr, 0, hdr.length), 68);
  assert.is(b.u8.length, 68);
  assertValid(b.u8, b.l3, b.l4);
  assert.equal(b.u8.subarray(40), hdr);
});
ins("no room, too long, or a bad header: 0 and the packet unchanged", () => {
  const hdr = new Uint8Array(28).fill(7);
  const b = build({ seq: 1, flags: ACK, payload: "x" }, 8, 27);
  const before = b.u8.slice();
  assert.is(tcpInsertPayload(b.u8, b.l3, b.l4, hdr, 0, 28), 0);
  assert.is(tcpInsertPayload(b.u8, b.l3, b.l4, hdr, 1, 28), 0); // source too short
  b.u8[b.l3] = 0x35; // version 3
  assert.is(tcpInsertPayload(b.u8, b.l3, b.l4, hdr, 0, 1), 0);
  b.u8[b.l3] = 0x45;
  b.u8[b.l4 + 12] = 0xf0; // data offset 60 > segment
  assert.is(tcpInsertPayload(b.u8, b.l3, b.l4, hdr, 0, 1), 0);
  b.u8[b.l4 + 12] = before[b.l4 + 12];
  assert.equal(b.u8, before);
  const big = build({ seq: 1, flags: ACK, payload: new Uint8Array(65535 - 40 - 10) }, 0, 64);
  assert.is(tcpInsertPayload(big.u8, big.l3, big.l4, hdr, 0, 11), 0);
  assert.is(tcpInsertPayload(big.u8, big.l3, big.l4, hdr, 0, 10), 65535);
  assertValid(big.u8, big.l3, big.l4);
});
ins.run();

// ---
const stream = suite("seqadj: a whole connection through the rules");
stream("the server reassembles header + client bytes; its acks map back to the client's", () => {
  const r = rng(2024);
  for (let round = 0; round < 200; round++) {
    const isn = r() < 0.5 ? (0xffffffff - Math.floor(r() * 3000)) >>> 0 : Math.floor(r() * 2 ** 32);
    const v6 = r() < 0.5;
    const s = v6 ? SRC6 : [SRC4, 0, 0, 0], t = v6 ? DST6 : [DST4, 0, 0, 0];
    const hdr = new Uint8Array(128);
    const d = proxyV1Write(hdr, 0, v6 ? 6 : 4, s[0], s[1], s[2], s[3], t[0], t[1], t[2], t[3], 40000, 8080);
    const data = new Uint8Array(200 + Math.floor(r() * 3000)).map(() => Math.floor(r() * 256));
    // The client's segments, in order, some sent twice, some out of order.
    const segs: [number, number][] = [];
    for (let off = 0; off < data.length;) {
      const len = Math.min(data.length - off, 1 + Math.floor(r() * 700));
      segs.push([off, len]);
      off += len;
    }
    const sent = [...segs];
    for (let k = 0; k < 4; k++) sent.push(segs[Math.floor(r() * segs.length)]);
    sent.push(segs[0]);
    for (let k = sent.length - 1; k > 0; k--) { const j = Math.floor(r() * (k + 1)); [sent[k], sent[j]] = [sent[j], sent[k]]; }
    const server = new Uint8Array(d + data.length).fill(POISON);
    const have = new Uint8Array(server.length);
    // Handshake ACK and SYN first: not shifted.
    const syn = build({ v6, seq: isn, flags: SYN });
    assert.is(seqAdjClient(syn.u8, syn.l4, syn.l4len, isn, d), SEQADJ_KEEP);
    const hs = build({ v6, seq: (isn + 1) >>> 0, flags: ACK });
    assert.is(seqAdjClient(hs.u8, hs.l4, hs.l4len, isn, d), SEQADJ_KEEP);
    assert.is(u32(hs.u8, hs.l4 + 4), (isn + 1) >>> 0);
    for (const [off, len] of sent) {
      const b = build({ v6, seq: (isn + 1 + off) >>> 0, flags: ACK | PSH, payload: data.subarray(off, off + len) }, 8, 128);
      const act = seqAdjClient(b.u8, b.l4, b.l4len, isn, d);
      let l4len = b.l4len;
      if (act === SEQADJ_INSERT) l4len += tcpInsertPayload(b.u8, b.l3, b.l4, hdr, 0, d) - (b.end - b.l3);
      else assert.is(act, SEQADJ_SHIFT);
      assert.is(assertValid(b.u8, b.l3, b.l4), l4len);
      const at = (u32(b.u8, b.l4 + 4) - isn - 1 + 2 ** 32) % 2 ** 32;
      const bytes = b.u8.subarray(b.l4 + 20, b.l4 + l4len);
      for (let k = 0; k < bytes.length; k++) {
        // A retransmission carries exactly the bytes the server already has there.
        if (have[at + k]) assert.is(server[at + k], bytes[k]);
        server[at + k] = bytes[k];
        have[at + k] = 1;
      }
    }
    assert.equal(server.subarray(0, d), hdr.subarray(0, d));
    assert.equal(server.subarray(d), data);
    // The server's cumulative acks, as the client sees them.
    for (const k of [0, 1, d - 1, d, d + 1, d + data.length]) {
      const b = build({ v6, seq: 77, ack: (isn + 1 + k) >>> 0, flags: ACK, opts: [1, 1, ...sack((isn + 1 + k) >>> 0, (isn + 1 + d + data.length) >>> 0)] });
      seqAdjServer(b.u8, b.l4, b.l4len, isn, d);
      const want = (isn + 1 + Math.max(0, k - d)) >>> 0;
      assert.is(u32(b.u8, b.l4 + 8), want);
      assert.is(u32(b.u8, b.l4 + 24), want);
      assert.is(u32(b.u8, b.l4 + 28), (isn + 1 + data.length) >>> 0);
      assertValid(b.u8, b.l3, b.l4);
    }
    // A FIN after all data is shifted, and the server's ack of it maps to the client's.
    const fin = build({ v6, seq: (isn + 1 + data.length) >>> 0, flags: FIN | ACK });
    assert.is(seqAdjClient(fin.u8, fin.l4, fin.l4len, isn, d), SEQADJ_SHIFT);
    assert.is(seqAdjAck((u32(fin.u8, fin.l4 + 4) + 1) >>> 0, isn, d), (isn + 2 + data.length) >>> 0);
  }
});
stream.run();
