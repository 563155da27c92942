// AF_XDP socket rings (io/xsk.ts) over rings in ordinary memory, the test playing the
// kernel: received frames are read and handed back to the fill ring, send frames come
// from the free half and return through the completion ring, and every index keeps
// working across the 32-bit wrap.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { XSK_FRAME, XSK_RING, XskSocket, memRing } from "../../src/io/xsk.ts";

const BASE = 1 << 23;

function socketWithRings(start = 0) {
  const rx = memRing(16), tx = memRing(16), fill = memRing(8), comp = memRing(8);
  // The kernel's indices may start anywhere; the socket's own must follow them.
  for (const r of [rx, tx, fill, comp]) { r.u32[r.prod] = start; r.u32[r.cons] = start; }
  const area = new DataView(new ArrayBuffer(BASE + 2 * XSK_RING * XSK_FRAME));
  const sock = new XskSocket("test", -1, 1, 0x0200, 0x01020304, BASE, rx, tx, fill, comp, area, true);
  return { sock, rx, tx, fill, comp, area };
}

const s = suite("AF_XDP rings");

s("half the frames wait in the fill ring, the other half are for sending", () => {
  const { sock, fill } = socketWithRings();
  assert.is(fill.u32[fill.prod], XSK_RING);
  const seen = new Set<number>();
  for (let i = 0; i < XSK_RING; i++) seen.add(fill.u32[fill.desc + i * 2]);
  for (let i = 0; i < XSK_RING; i++) {
    const f = sock.txFrame();
    assert.ok(f >= BASE && !seen.has(f - BASE), `send frame ${f}`);
  }
  assert.is(sock.txFrame(), -1, "every send frame in flight");
});

for (const start of [0, 0xffff_fffd]) {
  s(`receive, refill, send and complete across ${start ? "the 32-bit wrap" : "a ring's turn"}`, () => {
    const { sock, rx, tx, fill, comp } = socketWithRings(start);
    let kernelFill = start; // the next fill entry the kernel takes
    for (let round = 0; round < 3 * XSK_RING; round++) {
      // The kernel receives into a frame from the fill ring (at 256 bytes of headroom).
      const frame = fill.u32[fill.desc + (kernelFill & (XSK_RING - 1)) * 2];
      kernelFill = (kernelFill + 1) >>> 0;
      const d = rx.desc + ((rx.u32[rx.prod] & (XSK_RING - 1)) << 2);
      rx.u32[d] = frame + 256; rx.u32[d + 2] = 60 + (round % 7);
      rx.u32[rx.prod] = (rx.u32[rx.prod] + 1) >>> 0;
      assert.is(sock.rxCount(), 1);
      assert.equal([sock.rxAddr(0), sock.rxLen(0)], [BASE + frame + 256, 60 + (round % 7)]);
      sock.rxRelease(1);
      assert.is(sock.rxCount(), 0);
      assert.is(rx.u32[rx.cons], rx.u32[rx.prod]);
      assert.is((fill.u32[fill.prod] - kernelFill) >>> 0, XSK_RING, "the fill ring is full again");
      // One send: the frame is queued, the kernel takes it and completes it.
      const f = sock.txFrame();
      assert.ok(f >= BASE && f < BASE + 2 * XSK_RING * XSK_FRAME);
      sock.txPush(f, 64);
      assert.is(sock.flushTx(), 1, "not sent yet: this kernel sends when the test says");
      const t = tx.desc + ((tx.u32[tx.cons] & (XSK_RING - 1)) << 2);
      assert.equal([tx.u32[t], tx.u32[t + 2]], [f - BASE, 64]);
      tx.u32[tx.cons] = (tx.u32[tx.cons] + 1) >>> 0;
      comp.u32[comp.desc + ((comp.u32[comp.prod] & (XSK_RING - 1)) << 1)] = f - BASE;
      comp.u32[comp.prod] = (comp.u32[comp.prod] + 1) >>> 0;
      assert.is(sock.flushTx(), 0);
    }
  });
}

s("a partial checksum's frame carries TX metadata in front: checksum flag, start and offset", () => {
  const { sock, tx, area } = socketWithRings();
  const f = sock.txFrame();
  assert.ok((f - BASE) % XSK_FRAME >= 24, "room for the metadata in the frame's own chunk");
  sock.txPushPartial(f, 80, 34, 16);
  const d = tx.desc;
  assert.equal([tx.u32[d] + BASE, tx.u32[d + 2], tx.u32[d + 3]], [f, 80, 2], "XDP_TX_METADATA in the options");
  // struct xsk_tx_metadata: flags (u64), csum_start (u16), csum_offset (u16), launch_time (u64).
  assert.equal([area.getBigUint64(f - 24, true), area.getUint16(f - 16, true), area.getUint16(f - 14, true)], [2n, 34, 16]);
  const g = sock.txFrame();
  sock.txPush(g, 60);
  assert.is(tx.u32[d + 4 + 3], 0, "a plain frame has no options");
});

s("a completed frame comes back as its chunk's send frame, whatever offset the kernel reports", () => {
  const { sock, tx, comp } = socketWithRings();
  const frames: number[] = [];
  for (let i = 0; i < XSK_RING; i++) { const f = sock.txFrame(); frames.push(f); sock.txPush(f, 64); }
  sock.flushTx();
  // The kernel reports the chunk's start for the first, the frame's address for the rest.
  for (let i = 0; i < XSK_RING; i++) {
    const off = frames[i] - BASE;
    comp.u32[comp.desc + i * 2] = i === 0 ? off - (off % XSK_FRAME) : off;
  }
  comp.u32[comp.prod] = XSK_RING;
  tx.u32[tx.cons] = XSK_RING;
  const again = new Set<number>();
  for (let i = 0; i < XSK_RING; i++) again.add(sock.txFrame());
  assert.equal([...again].sort((a, b) => a - b), [...frames].sort((a, b) => a - b));
});

s.run();
