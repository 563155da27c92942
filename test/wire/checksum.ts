import { suite } from "uvu";
import * as assert from "uvu/assert";
import { csumApply, csumCompute, csumDelta16, csumDelta32, csumReplace16, csumReplace32 } from "../../src/wire/checksum.ts";
import { buildIp4, checksumsValid, l4CsumFull, rng } from "../fixtures/builder.ts";
import { Frame } from "../../src/wire/frame.ts";
import { Pkt, parseIp } from "../../src/wire/pkt.ts";
import { ipv4SetDstCsum, ipv4SetSrcCsum } from "../../src/wire/ipv4.ts";

const full = suite("checksum: RFC 1071");
full("known vector (RFC 1071 §3 example bytes)", () => {
  const b = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  // Sum 0x2ddf0 folds to 0xddf2; the checksum is its complement.
  assert.is(csumCompute(b, 0, b.length), ~0xddf2 & 0xffff);
});
full("odd length pads with a zero byte", () => {
  assert.is(csumCompute(new Uint8Array([0x12, 0x34, 0x56]), 0, 3), ~(0x1234 + 0x5600) & 0xffff);
});
full.run();

const inc = suite("checksum: RFC 1624 incremental vs full recompute");
inc("16-bit replace agrees with recompute on random words", () => {
  const r = rng(42);
  for (let n = 0; n < 10000; n++) {
    const len = 2 + 2 * Math.floor(r() * 30);
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = Math.floor(r() * 256);
    const c0 = csumCompute(b, 0, len);
    const at = 2 * Math.floor(r() * (len / 2));
    const old = (b[at] << 8) | b[at + 1];
    const now = Math.floor(r() * 65536);
    b[at] = now >> 8; b[at + 1] = now & 0xff;
    const c1 = csumReplace16(c0, old, now);
    const want = csumCompute(b, 0, len);
    // 0x0000 and 0xffff are the same value in one's complement arithmetic.
    assert.ok(c1 === want || (c1 === 0xffff && want === 0) || (c1 === 0 && want === 0xffff), `case ${n}: ${c1} vs ${want}`);
  }
});
inc("NAT rewrite of address and port on 10 000 seeded packets keeps every checksum valid", () => {
  const r = rng(7);
  const f = Frame.alloc(2048);
  const p = new Pkt();
  for (let n = 0; n < 10000; n++) {
    const udp = r() < 0.5;
    const payload = new Uint8Array(Math.floor(r() * 200));
    for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(r() * 256);
    const pkt = buildIp4({
      src: `198.18.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`, dst: `198.19.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`,
      proto: udp ? "udp" : "tcp", sport: Math.floor(r() * 65536), dport: Math.floor(r() * 65536), flags: 0x18, payload,
    });
    f.u8.set(pkt, 100);
    assert.is(parseIp(p, f, 100, pkt.length), 0);
    const newAddr = (0xc6120000 | Math.floor(r() * 65536)) | 0;
    const newPort = Math.floor(r() * 65536);
    const dst = r() < 0.5;
    const old = dst ? ipv4SetDstCsum(f.dv, 100, newAddr) : ipv4SetSrcCsum(f.dv, 100, newAddr);
    const portAt = p.l4 + (dst ? 2 : 0);
    const oldPort = f.dv.getUint16(portAt);
    let c = f.dv.getUint16(p.l4csum);
    c = csumReplace16(csumReplace32(c, old, newAddr), oldPort, newPort);
    if (udp && c === 0) c = 0xffff;
    f.dv.setUint16(p.l4csum, c);
    f.dv.setUint16(portAt, newPort);
    const out = f.u8.slice(100, 100 + pkt.length);
    assert.ok(checksumsValid(out), `packet ${n} invalid after rewrite`);
    void l4CsumFull;
  }
});
inc("summed field changes applied once equal the csumReplace chain (NAT's one-pass rewrite)", () => {
  const r = rng(11);
  const w32 = () => (Math.floor(r() * 65536) << 16) | Math.floor(r() * 65536);
  const w16 = () => Math.floor(r() * 65536);
  for (let n = 0; n < 100000; n++) {
    const c = n % 97 === 0 ? 0 : n % 89 === 0 ? 0xffff : w16();
    // Full NAT changes both addresses and both ports; NAT leaves one of each as it was.
    const s0 = w32(), s1 = n % 3 === 0 ? s0 : w32(), d0 = w32(), d1 = n % 5 === 0 ? d0 : w32();
    const p0 = w16(), p1 = n % 7 === 0 ? p0 : w16(), q0 = w16(), q1 = w16();
    const chain = csumReplace16(csumReplace16(csumReplace32(csumReplace32(c, s0, s1), d0, d1), p0, p1), q0, q1);
    const once = csumApply(c, csumDelta32(s0, s1) + csumDelta32(d0, d1) + csumDelta16(p0, p1) + csumDelta16(q0, q1));
    assert.is(once, chain, `case ${n}`);
  }
});
inc.run();
