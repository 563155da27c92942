// Byte-exact fixtures (smoltcp style): fixed packets with a comment per field, read in
// both directions — every field parsed from the bytes, and the same bytes produced by
// the builder into a buffer poisoned with 0xa5.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DROP } from "../../src/wire/drop.ts";
import { Frame } from "../../src/wire/frame.ts";
import { ipv4Check, ipv4Dst, ipv4HeaderLen, ipv4Src, ipv4TotalLen } from "../../src/wire/ipv4.ts";
import { Pkt, parseIp } from "../../src/wire/pkt.ts";
import { tcpCheck, tcpFlags } from "../../src/wire/tcp.ts";
import { udpCheck } from "../../src/wire/udp.ts";
import { buildIp4, ip4 } from "../fixtures/builder.ts";

// 198.18.0.2:40000 -> 198.18.0.100:80, TCP SYN, no payload.
const TCP_SYN = new Uint8Array([
  0x45, 0x00, 0x00, 0x28, // version 4, IHL 5, TOS 0, total length 40
  0x12, 0x34, 0x40, 0x00, // id 0x1234, DF, offset 0
  0x40, 0x06, 0x00, 0x00, // TTL 64, protocol TCP, header checksum (filled below)
  0xc6, 0x12, 0x00, 0x02, // source 198.18.0.2
  0xc6, 0x12, 0x00, 0x64, // destination 198.18.0.100
  0x9c, 0x40, 0x00, 0x50, // source port 40000, destination port 80
  0x00, 0x00, 0x03, 0xe8, // sequence number 1000
  0x00, 0x00, 0x00, 0x00, // acknowledgment number 0 (no ACK flag)
  0x50, 0x02, 0xff, 0xff, // data offset 5, flags SYN, window 65535
  0x00, 0x00, 0x00, 0x00, // checksum (filled below), urgent pointer 0
]);
{
  const ref = buildIp4({ src: "198.18.0.2", dst: "198.18.0.100", sport: 40000, dport: 80, flags: 0x02 });
  TCP_SYN.set(ref.subarray(10, 12), 10);
  TCP_SYN.set(ref.subarray(36, 38), 36);
}

const fx = suite("wire: fixed IPv4/TCP packet");
fx("deconstruct: every field read from the bytes", () => {
  const f = new Frame(TCP_SYN.slice().buffer);
  assert.is(ipv4Check(f.u8, 0, TCP_SYN.length), 0);
  assert.is(ipv4HeaderLen(f.u8, 0), 20);
  assert.is(ipv4TotalLen(f.dv, 0), 40);
  assert.is(ipv4Src(f.dv, 0), ip4("198.18.0.2"));
  assert.is(ipv4Dst(f.dv, 0), ip4("198.18.0.100"));
  assert.is(tcpCheck(f.u8, 20, 20), 0);
  assert.is(tcpFlags(f.u8, 20), 0x02);
  const p = new Pkt();
  assert.is(parseIp(p, f, 0, TCP_SYN.length), 0);
  assert.equal([p.ipv, p.proto, p.sport, p.dport, p.tcpFlags, p.l4, p.l4csum, p.len], [4, 6, 40000, 80, 0x02, 20, 36, 40]);
});
fx("construct: the builder writes the same bytes into a poisoned buffer", () => {
  const out = new Uint8Array(64).fill(0xa5);
  out.set(buildIp4({ src: "198.18.0.2", dst: "198.18.0.100", sport: 40000, dport: 80, flags: 0x02 }), 8);
  assert.equal(out.subarray(8, 48), TCP_SYN);
  assert.is(out[7], 0xa5);
  assert.is(out[48], 0xa5);
});
fx("trailing padding past the IP total length is trimmed", () => {
  const padded = new Uint8Array(60);
  padded.set(TCP_SYN);
  const p = new Pkt();
  assert.is(parseIp(p, new Frame(padded.buffer), 0, 60), 0);
  assert.is(p.len, 40);
});
fx.run();

const bad = suite("wire: length checks");
bad("every truncation of a valid packet is a drop reason, never an exception", () => {
  const p = new Pkt();
  for (let n = 0; n < TCP_SYN.length; n++) {
    const f = new Frame(TCP_SYN.slice(0, n).buffer);
    const r = parseIp(p, f, 0, n);
    assert.ok(r === DROP.TRUNCATED || r === DROP.BAD_IP_HEADER, `length ${n}: ${r}`);
  }
});
bad("udp length field must fit the payload", () => {
  const u = buildIp4({ src: "198.18.0.2", dst: "198.18.0.100", proto: "udp", sport: 1, dport: 53, payload: "abc" });
  assert.is(udpCheck(u, 20, 11), 0);
  assert.is(udpCheck(u, 20, 10), DROP.BAD_L4_HEADER);
  assert.is(udpCheck(u, 20, 7), DROP.TRUNCATED);
});
bad.run();
