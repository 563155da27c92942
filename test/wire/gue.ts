// GUE header (draft-ietf-intarea-gue, Linux include/net/gue.h): fixed bytes read and written
// back; version 1 direct encapsulation; Linux's flag validation; the remote checksum option
// and the receiver's completion of the inner checksum.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DROP } from "../../src/wire/drop.ts";
import {
  GUE_FLAG_PRIV, GUE_REMCSUM_HDR_LEN, IPPROTO_IPIP, IPPROTO_IPV6, gueCheck, gueControl, gueFlags, gueHeaderLen,
  gueProto, gueRemcsumApply, gueRemcsumAt, gueVersion, gueWrite, gueWriteRemcsum,
} from "../../src/wire/gue.ts";
import { buildIp4, checksumsValid, l4CsumFull } from "../fixtures/builder.ts";
import { csumFold, ipv4PseudoSum } from "../../src/wire/checksum.ts";

const DATA = new Uint8Array([
  0x00, // version 0, C 0, Hlen 0
  0x04, // proto/ctype 4: an IPv4 packet follows
  0x00, 0x00, // flags 0
]);
const REMCSUM = new Uint8Array([
  0x02, // version 0, C 0, Hlen 2 (two option words)
  0x29, // proto/ctype 41: an IPv6 packet follows
  0x00, 0x01, // flags: P (private flags present)
  0x80, 0x00, 0x00, 0x00, // private flags: REMCSUM
  0x00, 0x28, // checksum start 40 (after an IPv6 header)
  0x00, 0x2e, // checksum offset 46 (UDP checksum field)
]);

const fx = suite("wire/gue: fixed headers");
fx("deconstruct: data header", () => {
  assert.is(gueCheck(DATA, 0, 4), 0);
  assert.is(gueVersion(DATA, 0), 0);
  assert.is(gueControl(DATA, 0), false);
  assert.is(gueHeaderLen(DATA, 0), 4);
  assert.is(gueProto(DATA, 0), IPPROTO_IPIP);
  assert.is(gueFlags(DATA, 0), 0);
  assert.is(gueRemcsumAt(DATA, 0), -1);
});
fx("deconstruct: remote checksum header", () => {
  assert.is(gueCheck(REMCSUM, 0, 12), 0);
  assert.is(gueHeaderLen(REMCSUM, 0), GUE_REMCSUM_HDR_LEN);
  assert.is(gueProto(REMCSUM, 0), IPPROTO_IPV6);
  assert.is(gueFlags(REMCSUM, 0), GUE_FLAG_PRIV);
  assert.is(gueRemcsumAt(REMCSUM, 0), 8);
});
fx("construct: both into poisoned buffers", () => {
  const a = new Uint8Array(8).fill(0xa5);
  assert.is(gueWrite(a, 2, IPPROTO_IPIP), 4);
  assert.equal(a.subarray(2, 6), DATA);
  assert.equal([a[1], a[6]], [0xa5, 0xa5]);
  const b = new Uint8Array(16).fill(0xa5);
  assert.is(gueWriteRemcsum(b, 2, IPPROTO_IPV6, 40, 46), 12);
  assert.equal(b.subarray(2, 14), REMCSUM);
  assert.equal([b[1], b[14]], [0xa5, 0xa5]);
});
fx("version 1: direct IPv4 / IPv6, no GUE header", () => {
  const v4 = new Uint8Array([0x45, 0, 0, 20]);
  assert.is(gueCheck(v4, 0, 4), 0);
  assert.is(gueVersion(v4, 0), 1);
  assert.is(gueHeaderLen(v4, 0), 0);
  assert.is(gueProto(v4, 0), IPPROTO_IPIP);
  const v6 = new Uint8Array([0x60, 0, 0, 0]);
  assert.is(gueCheck(v6, 0, 4), 0);
  assert.is(gueProto(v6, 0), IPPROTO_IPV6);
  const v5 = new Uint8Array([0x50, 0, 0, 0]); // version bits 01 but IP version 5
  assert.is(gueCheck(v5, 0, 4), DROP.BAD_TUNNEL_HEADER);
});
fx("control messages are recognised (the caller drops them)", () => {
  const c = new Uint8Array([0x20, 0x01, 0, 0]);
  assert.is(gueCheck(c, 0, 4), 0);
  assert.is(gueControl(c, 0), true);
});

// ---

const chk = suite("wire/gue: gueCheck rejects what validate_gue_flags rejects");
chk("versions 2 and 3", () => {
  assert.is(gueCheck(new Uint8Array([0x80, 4, 0, 0]), 0, 4), DROP.BAD_TUNNEL_HEADER);
  assert.is(gueCheck(new Uint8Array([0xc0, 4, 0, 0]), 0, 4), DROP.BAD_TUNNEL_HEADER);
});
chk("truncated header or options", () => {
  assert.is(gueCheck(DATA, 0, 3), DROP.TRUNCATED);
  assert.is(gueCheck(DATA, 0, 0), DROP.TRUNCATED);
  assert.is(gueCheck(REMCSUM, 0, 11), DROP.TRUNCATED);
});
chk("unknown standard flags", () => {
  assert.is(gueCheck(new Uint8Array([0, 4, 0x80, 0]), 0, 4), DROP.BAD_TUNNEL_HEADER);
  assert.is(gueCheck(new Uint8Array([0, 4, 0, 0x02]), 0, 4), DROP.BAD_TUNNEL_HEADER);
});
chk("P flag without room for the private flags, unknown private flags, REMCSUM without its option", () => {
  assert.is(gueCheck(new Uint8Array([0, 4, 0, 1]), 0, 4), DROP.BAD_TUNNEL_HEADER);
  assert.is(gueCheck(new Uint8Array([1, 4, 0, 1, 0x40, 0, 0, 0]), 0, 8), DROP.BAD_TUNNEL_HEADER);
  assert.is(gueCheck(new Uint8Array([1, 4, 0, 1, 0x80, 0, 0, 0]), 0, 8), DROP.BAD_TUNNEL_HEADER);
  assert.is(gueCheck(new Uint8Array([1, 4, 0, 1, 0, 0, 0, 0]), 0, 8), 0, "P with no private flag set is valid");
});

// ---

const rc = suite("wire/gue: remote checksum offload");
rc("the receiver completes a partial (pseudo-header only) UDP checksum", () => {
  const pkt = buildIp4({ src: "198.18.2.2", dst: "198.18.0.100", proto: "udp", sport: 40000, dport: 53, payload: "remote checksum" });
  const want = l4CsumFull(pkt);
  // What a CHECKSUM_PARTIAL sender leaves: the folded pseudo-header sum, not complemented.
  const partial = csumFold(ipv4PseudoSum(0xc6120202 | 0, 0xc6120064 | 0, 17, pkt.length - 20));
  pkt[26] = partial >> 8;
  pkt[27] = partial & 0xff;
  assert.not.ok(checksumsValid(pkt));
  const buf = new Uint8Array(12 + pkt.length);
  gueWriteRemcsum(buf, 0, IPPROTO_IPIP, 20, 26);
  buf.set(pkt, 12);
  assert.is(gueRemcsumApply(buf, gueRemcsumAt(buf, 0), 12, pkt.length), 0);
  assert.is((buf[12 + 26] << 8) | buf[12 + 27], want);
  assert.ok(checksumsValid(buf.subarray(12)));
});
rc("start or offset outside the payload", () => {
  const buf = new Uint8Array(12 + 30);
  gueWriteRemcsum(buf, 0, IPPROTO_IPIP, 20, 29);
  assert.is(gueRemcsumApply(buf, 8, 12, 30), DROP.BAD_TUNNEL_HEADER);
  gueWriteRemcsum(buf, 0, IPPROTO_IPIP, 31, 20);
  assert.is(gueRemcsumApply(buf, 8, 12, 30), DROP.BAD_TUNNEL_HEADER);
});

fx.run();
chk.run();
rc.run();
