// Runs INSIDE a test namespace (test/io/tun.ts starts it with `ip netns exec`). Opens a TUN,
// brings it up through RtNetlink, measures recv/send on it, routes 198.18.9.0/24 into it,
// sends one UDP datagram there from this process and reads it back from the TUN, then
// writes the answer into the TUN and receives it on the same socket.
// Prints one JSON line, waits for a line on stdin (the test inspects `ip` meanwhile),
// closes the device, and prints a second JSON line.
// Precondition (set by the test): 198.18.8.1/32 on lo.
import { heapStats } from "bun:jsc";
import dgram from "node:dgram";
import { openTun, openTunQueue } from "../../src/io/tun.ts";
import { RtNetlink } from "../../src/io/rtnetlink.ts";
import { Poller } from "../../src/io/poller.ts";
import { sysctlWrite } from "../../src/io/sysctl.ts";
import { SysError } from "../../src/io/libc.ts";

const N = 100_000;
const out: Record<string, unknown> = {};
const nl = RtNetlink.open();
const dev = openTun("tslbt%d");
out.name = dev.name;
// No IPv6 on the TUN: router solicitations and MLD reports would land in the queue.
try { sysctlWrite(`net/ipv6/conf/${dev.name}/disable_ipv6`, 1); } catch { /* IPv6 not built in */ }
const ifindex = nl.linkIndex(dev.name);
out.ifindex = ifindex;
nl.linkSetUp(ifindex);
nl.linkSetMtu(ifindex, 1400);

const buf = new Uint8Array(65536);
const HEAD = 64;

// Empty queue: recv returns 0 (EAGAIN), without allocating.
out.emptyRecv = dev.recv(buf, HEAD, 2048);
for (let i = 0; i < 1000; i++) dev.recv(buf, HEAD, 2048);
Bun.gc(true);
let before = heapStats().objectCount;
let t0 = Bun.nanoseconds();
let sum = 0;
for (let i = 0; i < N; i++) sum += dev.recv(buf, HEAD, 2048);
const recvNs = (Bun.nanoseconds() - t0) / N;
out.recvAllocDelta = heapStats().objectCount - before;
out.recvNsPerCall = Math.round(recvNs);
out.recvSum = sum;
out.badRange = dev.recv(buf, 65000, 2048);

// send: packets with a broken IPv4 header checksum, which ip_rcv drops at once.
const junk = 28;
buf.fill(0, HEAD, HEAD + junk);
buf[HEAD] = 0x45;
buf[HEAD + 3] = junk;
buf[HEAD + 8] = 64;
buf[HEAD + 9] = 17;
buf[HEAD + 10] = 0xde; // wrong checksum
for (let i = 0; i < 1000; i++) dev.send(buf, HEAD, junk);
Bun.gc(true);
before = heapStats().objectCount;
t0 = Bun.nanoseconds();
let sent = 0;
for (let i = 0; i < N; i++) sent += dev.send(buf, HEAD, junk) === junk ? 1 : 0;
out.sendNsPerCall = Math.round((Bun.nanoseconds() - t0) / N);
out.sendAllocDelta = heapStats().objectCount - before;
out.sendOk = sent;

// Poller on an empty queue: timeout.
const poller = new Poller([dev.fd]);
out.pollEmpty = poller.wait(0);

// Route 198.18.9.0/24 into the TUN and send one datagram there.
nl.routeAdd({ af: 4, dst: "198.18.9.0", prefixLen: 24, oif: ifindex });
const sock = dgram.createSocket("udp4");
await new Promise<void>((res) => sock.bind(0, "198.18.8.1", () => res()));
const lport = sock.address().port;
await new Promise<void>((res, rej) => sock.send("ping-tslb", 9999, "198.18.9.9", (e) => (e ? rej(e) : res())));
out.pollReady = poller.wait(2000);
out.readable = poller.readable(0);
const n = dev.recv(buf, HEAD, 2048);
const dv = new DataView(buf.buffer, HEAD);
out.pkt = n <= 0 ? { n } : {
  n,
  version: buf[HEAD] >> 4,
  proto: buf[HEAD + 9],
  src: buf.subarray(HEAD + 12, HEAD + 16).join("."),
  dst: buf.subarray(HEAD + 16, HEAD + 20).join("."),
  sport: dv.getUint16(20),
  dport: dv.getUint16(22),
  payload: new TextDecoder().decode(buf.subarray(HEAD + 28, HEAD + n)),
};
out.lport = lport;

// Answer it by writing an IPv4/UDP packet into the TUN: 198.18.9.9:9999 -> 198.18.8.1:lport.
const payload = new TextEncoder().encode("pong-tslb");
const len = 28 + payload.length;
const o = 1000;
buf.fill(0, o, o + len);
const w = new DataView(buf.buffer, o);
w.setUint8(0, 0x45);
w.setUint16(2, len);
w.setUint8(8, 64);
w.setUint8(9, 17);
buf.set([198, 18, 9, 9], o + 12);
buf.set([198, 18, 8, 1], o + 16);
let s = 0;
for (let i = 0; i < 20; i += 2) s += w.getUint16(i);
while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
w.setUint16(10, ~s & 0xffff);
w.setUint16(20, 9999);
w.setUint16(22, lport);
w.setUint16(24, 8 + payload.length); // UDP checksum 0: none (IPv4 only)
buf.set(payload, o + 28);
const got = new Promise<string>((res) => {
  const t = setTimeout(() => res("(timeout)"), 2000);
  sock.once("message", (m) => { clearTimeout(t); res(m.toString()); });
});
out.sendLen = dev.send(buf, o, len);
out.reply = await got;
sock.close();

// A second queue of the same multi-queue device.
const q2 = openTunQueue(dev.name);
out.queue2 = q2.name === dev.name && q2.fd !== dev.fd;
try {
  openTun(dev.name, { multiQueue: false });
  out.singleOnMulti = "opened";
} catch (e) {
  out.singleOnMulti = (e as SysError).message;
}

console.log(JSON.stringify(out));
// Hold the device while the test looks at it with `ip`.
for await (const _ of console) break;

q2.close();
dev.close();
dev.close(); // idempotent
let gone = "";
try {
  nl.linkIndex(dev.name);
  gone = "still there";
} catch (e) {
  gone = (e as SysError).code;
}
nl.close();
console.log(JSON.stringify({ afterClose: gone }));
