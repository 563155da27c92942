// A minimal tunnel-mode director for the decap tests, built the way tslb's data path
// will be: packets for the VIPs are routed into a TUN, read, encapsulated in place with
// forward/tunnel.ts, and written back into the same TUN, so the kernel routes the outer
// packet to the real server. Runs inside the director namespace under `timeout`.
//   bun tunnel_director.ts TUN TYPE FLAGS PORT SRC4 RS4 SRC6 RS6 VIP4 VIP6 TTL_SEC
// Prints "ready" once the TUN is up and routed; counts on exit (stdin closed or TTL).
import { Poller } from "../../src/io/poller.ts";
import { RtNetlink } from "../../src/io/rtnetlink.ts";
import { sysctlWrite } from "../../src/io/sysctl.ts";
import { openTun } from "../../src/io/tun.ts";
import { TUN_GRE, TUN_GUE, TUN_IPIP, tunnelDest, tunnelEncap } from "../../src/forward/tunnel.ts";
import { Frame, HEADROOM } from "../../src/wire/frame.ts";
import { ip4 } from "../fixtures/builder.ts";
import { ip6 } from "../fixtures/ipv6.ts";

const [name, type, flags, port, src4, rs4, src6, rs6, vip4, vip6, ttl] = process.argv.slice(2);
const T = { ipip: TUN_IPIP, gue: TUN_GUE, gre: TUN_GRE }[type as "ipip"]!;
const d4 = tunnelDest(4, T, Number(flags), Number(port), [ip4(src4)], [ip4(rs4)]);
const d6 = tunnelDest(6, T, Number(flags), Number(port), ip6(src6), ip6(rs6));
const tun = openTun(name, { multiQueue: false });
const rt = RtNetlink.open();
const ifindex = rt.linkIndex(tun.name);
rt.linkSetUp(ifindex);
rt.routeAdd({ af: 4, dst: vip4, prefixLen: 32, oif: ifindex });
rt.routeAdd({ af: 6, dst: vip6, prefixLen: 128, oif: ifindex });
rt.close();
// The outer source is one of this host's own addresses: without accept_local the kernel
// drops it as a martian when it comes back in through the TUN (fib_validate_source).
sysctlWrite(`net/ipv4/conf/${tun.name}/accept_local`, 1);
sysctlWrite(`net/ipv4/conf/${tun.name}/rp_filter`, 0);
const f = Frame.alloc(HEADROOM + 65536);
const poller = new Poller([tun.fd]);
let n = 0;
let id = 0;
const counts = { in: 0, out: 0, err: 0 };
console.log("ready");
const stop = () => { console.log(JSON.stringify(counts)); process.exit(0); };
setTimeout(stop, Number(ttl) * 1000);
process.stdin.on("end", stop);
process.stdin.resume();
const loop = () => {
  poller.wait(50);
  for (let k = 0; k < 64; k++) {
    n = tun.recv(f.u8, HEADROOM, 65536);
    if (n <= 0) break;
    const v = f.u8[HEADROOM] >> 4;
    // Only the VIPs are routed here, but the kernel also sends IPv6 multicast (MLD, RS).
    if (v !== 4 && (v !== 6 || f.u8[HEADROOM + 24] === 0xff)) continue;
    counts.in++;
    const dst = v === 4 ? d4 : d6;
    const hash = (f.u8[HEADROOM + (v === 4 ? 20 : 40)] << 8) | f.u8[HEADROOM + (v === 4 ? 21 : 41)];
    const s = tunnelEncap(f, HEADROOM, n, dst, id++, hash * 2654435761);
    if (s < 0 || tun.send(f.u8, s, HEADROOM + n - s) < 0) counts.err++;
    else counts.out++;
  }
  setImmediate(loop);
};
loop();
