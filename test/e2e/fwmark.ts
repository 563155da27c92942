// End to end, firewall-mark services (-f): nftables marks the client's packets in the
// balancer's namespace, the policy rule tslb installs sends each mark to its own TUN,
// and tslb balances them by mark — whatever their destination address.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { CL, RS, Topology, sh } from "../../scripts/topology.ts";
import { BUN, ROOT, e2eSocket, ensureBinary, startServer, tslb } from "../helpers/tslb.ts";

/** An address that only the mark makes special: no VIP route exists for it. */
const MARKED = "198.18.3.10";

ensureBinary();
const topo = new Topology("e2efwm");
const socket = e2eSocket("fwm");
const servers: ReturnType<typeof Bun.spawn>[] = [];
const cli = (args: string[], stdin?: string) => tslb(topo.ns.lb, socket, args, { stdin });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");

function ensureNft(): void {
  if (sh(["which", "nft"], true).code === 0) return;
  sh(["timeout", "300", "apt-get", "install", "-y", "-qq", "nftables"], true);
  if (sh(["which", "nft"], true).code !== 0) {
    sh(["timeout", "300", "apt-get", "update", "-qq"], true);
    sh(["timeout", "300", "apt-get", "install", "-y", "-qq", "nftables"]);
  }
}

const fwm = suite("e2e fwmark service");

fwm.before(async () => {
  // uvu reports a throwing hook only as "0 passed": say why.
  try { await setup(); } catch (e) { console.error(`setup failed: ${(e as Error).message}`); throw e; }
});

async function setup(): Promise<void> {
  ensureNft();
  topo.up();
  topo.ip(topo.ns.cl, "route", "add", `${MARKED}/32`, "via", "198.18.2.1");
  const nft = `table ip tslbtest {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip daddr ${MARKED} tcp dport 80 meta mark set 5
    ip daddr ${MARKED} udp dport 53 meta mark set 5
  }
}
`;
  const r = Bun.spawnSync(["ip", "netns", "exec", topo.ns.lb, "nft", "-f", "-"], { stdin: new TextEncoder().encode(nft) });
  assert.is(r.exitCode, 0, r.stderr.toString());
  for (let i = 0; i < 2; i++) servers.push(await startServer(i ? topo.ns.rs2 : topo.ns.rs1, `rs${i + 1}`, RS[i], "8080", "5353", 120));
}

fwm.after(() => {
  cli(["--shutdown"]);
  for (const p of servers) p.kill();
  topo.destroy();
});

fwm("marked TCP and UDP are balanced by the -f 5 service", () => {
  const r = cli(["-R"], `-A -f 5 -s rr\n-a -f 5 -r ${RS[0]}:8080 -m\n-a -f 5 -r ${RS[1]}:8080 -m\n`);
  assert.equal([r.code, r.err], [0, ""]);
  assert.match(topo.ip(topo.ns.lb, "rule"), /fwmark 0x5 lookup/);
  assert.equal(client("http", MARKED, "80", "4"), [`rs2 ${CL}`, `rs1 ${CL}`, `rs2 ${CL}`, `rs1 ${CL}`]);
});

fwm("-L -n and -S -n show the fwmark service as ipvsadm does", () => {
  assert.is(cli(["-L", "-n"]).out, [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    "FWM  5 rr",
    "  -> 198.18.1.11:8080             Masq    1      0          2         ",
    "  -> 198.18.1.12:8080             Masq    1      0          2         ",
    "",
  ].join("\n"));
  assert.is(cli(["-S", "-n"]).out, "-A -f 5 -s rr\n-a -f 5 -r 198.18.1.11:8080 -m -w 1\n-a -f 5 -r 198.18.1.12:8080 -m -w 1\n");
});

fwm("a persistent fwmark service keeps the client on one server and lists an IP template", () => {
  assert.is(cli(["-E", "-f", "5", "-s", "rr", "-p", "60"]).code, 0);
  const answers = client("http", MARKED, "80", "3");
  assert.is(new Set(answers).size, 1, answers.join(","));
  const conns = cli(["-L", "-n", "-c"]).out.split("\n");
  assert.ok(conns.some((l) => /^IP  0[01]:\d\d  NONE        198\.18\.2\.2:0 +0\.0\.0\.5:0 +198\.18\.1\.1[12]:0$/.test(l)), conns.join("\n"));
});

fwm("removing the service removes its mark rule and its TUN", () => {
  assert.is(cli(["-D", "-f", "5"]).code, 0);
  assert.not.match(topo.ip(topo.ns.lb, "rule"), /fwmark/);
  assert.is(sh(["ip", "-n", topo.ns.lb, "link", "show", "tslbm5"], true).code !== 0, true);
});

fwm.run();
