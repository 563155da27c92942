// Runs INSIDE a test namespace (test/io/raw.ts starts it with `ip netns exec`), with
// 198.18.8.1/32 and 2001:2:8::1/128 on lo. Sends an IPIP packet to itself through an
// IPPROTO_RAW socket and reads it back on a raw protocol-4 socket (outer header included),
// does the same over IPv6 (the payload only comes back), exchanges a UDP datagram over a
// dual-stack socket from an IPv4 sender, and measures recv/sendTo allocation.
// Prints one JSON line.
import { heapStats } from "bun:jsc";
import { IPPROTO_IPIP, IPPROTO_RAW, openRaw, openUdp, sockaddrIn, sockaddrIn6 } from "../../src/io/raw.ts";
import { Poller } from "../../src/io/poller.ts";
import { buildIp4, ip4 } from "../fixtures/builder.ts";
import { ip6 } from "../fixtures/ipv6.ts";
import { TUN_IPIP, tunnelDest, tunnelEncap } from "../../src/forward/tunnel.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";

const out: Record<string, unknown> = {};
const buf = new Uint8Array(4096);
const waitFor = (fd: number) => new Poller([fd]).wait(2000);

// IPIP over IPv4: the datagram read from the raw socket starts with the outer header.
const rx4 = openRaw(4, IPPROTO_IPIP);
const tx4 = openRaw(4, IPPROTO_RAW);
out.empty = rx4.recv(buf, 0, buf.length);
const inner = buildIp4({ src: "198.18.2.2", dst: "198.18.0.100", proto: "udp", sport: 1, dport: 2, payload: "raw" });
const f = Frame.alloc(HEADROOM + inner.length);
f.u8.set(inner, HEADROOM);
const s = tunnelEncap(f, HEADROOM, inner.length, tunnelDest(4, TUN_IPIP, 0, 0, [ip4("198.18.8.1")], [ip4("198.18.8.1")]), 9, 0);
out.sent4 = tx4.sendTo(f.u8, s, HEADROOM + inner.length - s, sockaddrIn(ip4("198.18.8.1"), 0));
out.ready4 = waitFor(rx4.fd);
const n4 = rx4.recv(buf, 0, buf.length);
out.n4 = n4;
out.outer4 = [buf[0], buf[9], buf[20]]; // version/IHL, protocol, first inner byte
out.innerBack = Buffer.from(buf.subarray(20, n4)).equals(Buffer.from(inner));

// IPv4 in IPv6: an AF_INET6 raw socket returns the payload only.
const rx6 = openRaw(6, IPPROTO_IPIP);
const tx6 = openRaw(6, IPPROTO_RAW);
const s6 = tunnelEncap(f, HEADROOM, inner.length, tunnelDest(6, TUN_IPIP, 0, 0, ip6("2001:2:8::1"), ip6("2001:2:8::1")), 0, 0);
out.sent6 = tx6.sendTo(f.u8, s6, HEADROOM + inner.length - s6, sockaddrIn6(ip6("2001:2:8::1"), 0));
out.ready6 = waitFor(rx6.fd);
const n6 = rx6.recv(buf, 0, buf.length);
out.n6 = n6;
out.payload6Back = Buffer.from(buf.subarray(0, n6)).equals(Buffer.from(inner));

// UDP: a dual-stack listener receives from an IPv4 sender.
const lis = openUdp(6, 0 + 47001);
const snd = openUdp(4, 0);
out.udpAf = [lis.af, snd.af];
const msg = new TextEncoder().encode("gue?");
buf.set(msg, 100);
out.udpSent = snd.sendTo(buf, 100, msg.length, sockaddrIn(ip4("198.18.8.1"), 47001));
out.udpReady = waitFor(lis.fd);
out.udpN = lis.recv(buf, 0, buf.length);
out.badRange = lis.recv(buf, 4000, 200);
try { openUdp(6, 47001); out.rebind = "ok"; } catch (e) { out.rebind = (e as Error).message; }

// Allocation: 100k empty recvs and 20k sends to the UDP listener (drained as we go).
for (let i = 0; i < 1000; i++) rx4.recv(buf, 0, 2048);
Bun.gc(true);
let before = heapStats().objectCount;
let sum = 0;
for (let i = 0; i < 100_000; i++) sum += rx4.recv(buf, 0, 2048);
out.recvAlloc = heapStats().objectCount - before;
out.recvSum = sum;
const to = sockaddrIn(ip4("198.18.8.1"), 47001);
for (let i = 0; i < 1000; i++) { snd.sendTo(buf, 100, 4, to); lis.recv(buf, 0, 2048); }
Bun.gc(true);
before = heapStats().objectCount;
let ok = 0;
for (let i = 0; i < 20_000; i++) { ok += snd.sendTo(buf, 100, 4, to) === 4 ? 1 : 0; lis.recv(buf, 0, 2048); }
out.sendAlloc = heapStats().objectCount - before;
out.sendOk = ok;
for (const x of [rx4, tx4, rx6, tx6, lis, snd]) x.close();
console.log(JSON.stringify(out));
