// GRE header (RFC 2784 / RFC 2890): fixed bytes read field by field and written back into a
// 0xa5-poisoned buffer; the checks Linux's gre_parse_header makes; the checksum option.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { csumAdd, csumFold } from "../../src/wire/checksum.ts";
import { DROP } from "../../src/wire/drop.ts";
import {
  ETH_P_IP, ETH_P_IPV6, GRE_CSUM_HDR_LEN, GRE_F_CSUM, GRE_F_KEY, GRE_F_SEQ, GRE_HDR_LEN, greCheck, greFlags,
  greHeaderLen, greProto, greWrite, greWriteCsum,
} from "../../src/wire/gre.ts";

// Base header carrying IPv4, followed by 4 payload bytes.
const BASE = new Uint8Array([
  0x00, 0x00, // C=0 R=0 K=0 S=0, reserved 0, version 0
  0x08, 0x00, // protocol type 0x0800 (IPv4)
  0xde, 0xad, 0xbe, 0xef, // payload
]);
// Checksum present, carrying IPv6, same payload. Checksum: ~(0x8000 + 0x86dd + 0xdead + 0xbeef) folded.
const WITH_CSUM = new Uint8Array([
  0x80, 0x00, // C=1, version 0
  0x86, 0xdd, // protocol type 0x86DD (IPv6)
  0x00, 0x00, // checksum (filled below from the RFC 1071 sum)
  0x00, 0x00, // reserved1
  0xde, 0xad, 0xbe, 0xef,
]);
{
  const s = 0x8000 + 0x86dd + 0xdead + 0xbeef;
  const c = ~csumFold(s) & 0xffff;
  WITH_CSUM[4] = c >> 8;
  WITH_CSUM[5] = c & 0xff;
}

const fx = suite("wire/gre: fixed headers");
fx("deconstruct: base header", () => {
  assert.is(greCheck(BASE, 0, BASE.length), 0);
  assert.is(greFlags(BASE, 0), 0);
  assert.is(greHeaderLen(BASE, 0), GRE_HDR_LEN);
  assert.is(greProto(BASE, 0), ETH_P_IP);
});
fx("deconstruct: checksum header", () => {
  assert.is(greCheck(WITH_CSUM, 0, WITH_CSUM.length), 0);
  assert.is(greFlags(WITH_CSUM, 0), GRE_F_CSUM);
  assert.is(greHeaderLen(WITH_CSUM, 0), GRE_CSUM_HDR_LEN);
  assert.is(greProto(WITH_CSUM, 0), ETH_P_IPV6);
  assert.is(csumFold(csumAdd(WITH_CSUM, 0, WITH_CSUM.length, 0)), 0xffff);
});
fx("construct: base header into a poisoned buffer", () => {
  const out = new Uint8Array(16).fill(0xa5);
  out.set([0xde, 0xad, 0xbe, 0xef], 7);
  assert.is(greWrite(out, 3, ETH_P_IP), 4);
  assert.equal(out.subarray(3, 11), BASE);
  assert.is(out[2], 0xa5);
  assert.is(out[11], 0xa5);
});
fx("construct: checksum header into a poisoned buffer", () => {
  const out = new Uint8Array(20).fill(0xa5);
  out.set([0xde, 0xad, 0xbe, 0xef], 9);
  assert.is(greWriteCsum(out, 1, ETH_P_IPV6, 4), 8);
  assert.equal(out.subarray(1, 13), WITH_CSUM);
  assert.is(out[0], 0xa5);
  assert.is(out[13], 0xa5);
});
fx("construct: odd payload length is padded with zero for the checksum (RFC 1071)", () => {
  const out = new Uint8Array(8 + 3);
  out.set([1, 2, 3], 8);
  greWriteCsum(out, 0, ETH_P_IP, 3);
  assert.is(greCheck(out, 0, out.length), 0);
});

// ---

const chk = suite("wire/gre: greCheck rejects what Linux rejects");
chk("truncated base header", () => {
  assert.is(greCheck(BASE, 0, 3), DROP.TRUNCATED);
});
chk("routing bit (RFC 1701) and versions other than 0", () => {
  const r = BASE.slice();
  r[0] = 0x40;
  assert.is(greCheck(r, 0, r.length), DROP.BAD_TUNNEL_HEADER);
  const v = BASE.slice();
  v[1] = 0x01; // version 1 (PPTP's enhanced GRE)
  assert.is(greCheck(v, 0, v.length), DROP.BAD_TUNNEL_HEADER);
});
chk("key and sequence number lengthen the header (RFC 2890)", () => {
  const k = new Uint8Array([0x20 | 0x10, 0, 0x08, 0, 0, 0, 0, 7, 0, 0, 0, 1]);
  assert.is(greFlags(k, 0), GRE_F_KEY | GRE_F_SEQ);
  assert.is(greHeaderLen(k, 0), 12);
  assert.is(greCheck(k, 0, 12), 0);
  assert.is(greCheck(k, 0, 11), DROP.TRUNCATED);
  const all = new Uint8Array(16);
  all[0] = 0x80 | 0x20 | 0x10;
  assert.is(greHeaderLen(all, 0), 16);
});
chk("a wrong checksum", () => {
  const bad = WITH_CSUM.slice();
  bad[11] ^= 1;
  assert.is(greCheck(bad, 0, bad.length), DROP.BAD_TUNNEL_HEADER);
});

fx.run();
chk.run();
