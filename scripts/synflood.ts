// A spoofed-source TCP SYN flood for the reliability tests and benches, sent from inside
// a client namespace with a raw socket (IPPROTO_RAW: the IP header is ours):
//   bun scripts/synflood.ts VIP PORT SECONDS [SRC_PREFIX] [PPS]
// Source addresses are random inside SRC_PREFIX (default 198.18.128.0/17: the benchmarking
// range only), ports random. PPS caps the rate (default: as fast as one core sends). Stops
// by itself after SECONDS; prints "sent N in S s (R pps)".
import { csumAdd, csumFold, ipv4PseudoSum } from "../src/wire/checksum.ts";
import { parseIPv4 } from "../src/wire/addr.ts";
import { IPPROTO_RAW, openRaw, sockaddrIn } from "../src/io/raw.ts";

const [vipText, portText, secText, prefix = "198.18.128.0/17", ppsText = "0"] = process.argv.slice(2);
const pps = Number(ppsText);
const vip = parseIPv4(vipText ?? "");
const [netText, lenText] = prefix.split("/");
const net = parseIPv4(netText);
if (vip === null || net === null || !portText || !secText) {
  console.error("usage: synflood.ts VIP PORT SECONDS [SRC_PREFIX]");
  process.exit(2);
}
const hostBits = 32 - Number(lenText);
const port = Number(portText);
const until = performance.now() + Number(secText) * 1000;
const sock = openRaw(4, IPPROTO_RAW);
const to = sockaddrIn(vip, 0);
const pkt = new Uint8Array(40);
const dv = new DataView(pkt.buffer);
let seed = 0x12345678;
const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return seed >>> 0; };
let sent = 0;
let failed = 0;
const t0 = performance.now();
while (performance.now() < until) {
  if (pps > 0 && sent > ((performance.now() - t0) / 1000) * pps) {
    await Bun.sleep(1);
    continue;
  }
  for (let k = 0; k < 256; k++) {
    const src = (net | (rnd() & ((1 << hostBits) - 1))) | 0;
    pkt.fill(0);
    dv.setUint32(0, 0x45000028); dv.setUint32(4, 0x40000000 | (rnd() & 0xffff) << 16);
    dv.setUint8(8, 64); dv.setUint8(9, 6);
    dv.setInt32(12, src); dv.setInt32(16, vip);
    dv.setUint16(10, ~csumFold(csumAdd(pkt, 0, 20, 0)) & 0xffff);
    dv.setUint16(20, 1024 + (rnd() % 60000)); dv.setUint16(22, port);
    dv.setUint32(24, rnd()); dv.setUint8(32, 0x50); dv.setUint8(33, 0x02); dv.setUint16(34, 65535);
    dv.setUint16(36, ~csumFold(csumAdd(pkt, 20, 20, ipv4PseudoSum(src, vip, 6, 20))) & 0xffff);
    if (sock.sendTo(pkt, 0, 40, to) === 40) sent++; else failed++;
  }
}
const secs = (performance.now() - t0) / 1000;
console.log(`sent ${sent} in ${secs.toFixed(1)} s (${Math.round(sent / secs)} pps)${failed ? `, ${failed} send errors` : ""}`);
sock.close();
