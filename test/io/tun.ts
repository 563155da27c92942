// TUN device in a throw-away namespace: open, link up, a routed datagram read back from the
// queue, a packet written into it, EAGAIN -> 0, no allocation in recv/send, and the device
// vanishing when its fd closes. The probe (test/helpers/io_tun_probe.ts) runs inside the
// namespace; this file checks its report and the namespace state with `ip`.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { GatedProbe, ipn, sh, withNetns } from "../helpers/io_netns.ts";
import { SysError } from "../../src/io/libc.ts";
import { openTun } from "../../src/io/tun.ts";

const ALLOC_SLACK = 8; // a few objects from the runtime itself, never one per call

const tun = suite("tun");

tun("TUN in a namespace: route in, read, write back, no allocation, gone on close", async () => {
  await withNetns("io-tun", async (ns) => {
    ipn(ns, "addr", "add", "198.18.8.1/32", "dev", "lo");
    const probe = new GatedProbe(ns, "io_tun_probe.ts");
    try {
      const r = await probe.next();
      assert.match(r.name, /^tslbt\d+$/, "kernel resolved the %d template");
      assert.ok(r.ifindex > 0);
      assert.is(r.emptyRecv, 0, "recv on an empty queue returns 0 (EAGAIN)");
      assert.is(r.recvSum, 0);
      assert.is(r.badRange, -22, "recv past the end of the buffer: -EINVAL");
      assert.ok(r.recvAllocDelta <= ALLOC_SLACK, `recv allocated ${r.recvAllocDelta} objects in 100k calls`);
      assert.ok(r.sendAllocDelta <= ALLOC_SLACK, `send allocated ${r.sendAllocDelta} objects in 100k calls`);
      assert.is(r.sendOk, 100_000);
      assert.is(r.pollEmpty, 0);
      assert.is(r.pollReady, 1);
      assert.is(r.readable, true);
      assert.equal(r.pkt, {
        n: 37, version: 4, proto: 17, src: "198.18.8.1", dst: "198.18.9.9",
        sport: r.lport, dport: 9999, payload: "ping-tslb",
      });
      assert.is(r.sendLen, 37);
      assert.is(r.reply, "pong-tslb", "packet written into the TUN reached the UDP socket");
      assert.is(r.queue2, true, "openTunQueue attached a second queue");
      assert.is(r.singleOnMulti, `TUNSETIFF ${r.name}: Invalid argument (EINVAL)`);
      console.log(`    recv on empty queue: ${r.recvNsPerCall} ns/call; send (dropped by ip_rcv): ${r.sendNsPerCall} ns/call`);

      const link = ipn(ns, "link", "show", r.name);
      assert.match(link, /<[^>]*\bUP\b[^>]*>/, "link is up");
      assert.match(link, /mtu 1400/);
      assert.match(ipn(ns, "route", "show", "table", "all"), new RegExp(`198\\.18\\.9\\.0/24 dev ${r.name} `));

      probe.release();
      const after = await probe.next();
      assert.is(after.afterClose, "ENODEV", "device disappears when its fds are closed");
      assert.is(await probe.done(), 0);
      assert.is(sh(["ip", "-n", ns, "link", "show", r.name], true).code !== 0, true);
      assert.not.match(ipn(ns, "route", "show", "table", "all"), /198\.18\.9\.0/);
    } finally {
      await probe.done();
    }
  });
});

tun("openTun rejects a name longer than 15 bytes without touching the kernel", () => {
  try {
    openTun("tslbt-name-too-long");
    assert.unreachable("should throw");
  } catch (e) {
    assert.instance(e, SysError);
    assert.is((e as SysError).code, "EINVAL");
    assert.match((e as Error).message, /^TUNSETIFF tslbt-name-too-long \(name must be 1-15 bytes\): Invalid argument \(EINVAL\)$/);
  }
});

tun.run();
