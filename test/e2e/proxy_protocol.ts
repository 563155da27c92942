// End to end, --proxy-protocol over full NAT with nginx real servers (`listen ...
// proxy_protocol`): the servers' default route points at a router that knows nothing of
// the clients and they only ever see the balancer's address on the wire, yet nginx logs
// every request with the client's own address. A 5 MiB download and a 5 MiB upload cross
// thousands of sequence-number adjustments; v1 and v2, IPv4 and IPv6.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { CL, CL6, RS, RS6, Topology, VIP, VIP6 } from "../../scripts/topology.ts";
import { BUN, ROOT, e2eSocket, ensureBinary, tslb } from "../helpers/tslb.ts";
import { BIG_BYTES, NginxFixture, byteSum, ensureNginx, patternBytes, storedUpload } from "../helpers/nginx.ts";

const RULES = `-A -t ${VIP}:80 -s rr --proxy-protocol v2
-a -t ${VIP}:80 -r ${RS[0]}:8080 --fullnat
-a -t ${VIP}:80 -r ${RS[1]}:8080 --fullnat
-A -t [${VIP6}]:80 -s rr --proxy-protocol v2
-a -t [${VIP6}]:80 -r [${RS6[0]}]:8080 --fullnat
`;
/** The sum of the /big file's (and an upload's) bytes. */
const bigSum = () => byteSum(patternBytes(BIG_BYTES));

ensureBinary();
ensureNginx();
const topo = new Topology("e2epp", true);
const socket = e2eSocket("pp");
const fx = new NginxFixture("pp");
const { dir, servers } = fx;
const lb = () => topo.ns.lb;
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true, 60).out.trim().split("\n");
/** Access-log lines of both servers that answered 200. */
const served = () => servers.flatMap((s) => s.log()).filter((l) => l.split(" ")[1] === "200");

const e2e = suite("e2e --proxy-protocol (nginx behind full NAT)");

e2e.before(async () => {
  topo.up();
  await fx.startServers(topo.ns, [RS[0], RS6[0]], [RS[1], RS6[1]]);
  const r = cli(["-R"], RULES);
  assert.is(r.err, "");
  assert.is(r.code, 0);
});

e2e.after(() => fx.teardown(topo, socket));

e2e("-S keeps --proxy-protocol; -L is ipvsadm's", () => {
  assert.match(cli(["-S", "-n"]).out, new RegExp(`-A -t ${VIP}:80 -s rr --proxy-protocol v2`));
  assert.match(cli(["-L", "-n"]).out, /FullNat/);
});

e2e("20 requests, rr 10/10: nginx sees and logs the client's own address each time", () => {
  const lines = client("http", VIP, "80", "20");
  assert.is(lines.length, 20);
  lines.forEach((l, i) => assert.is(l, `rs${2 - (i % 2)} ${CL}`, `request ${i}`));
  const log = served();
  assert.is(log.length, 20);
  for (const l of log) assert.is(l.split(" ")[0], CL);
});

e2e("a 5 MiB download arrives whole (server data, client ACKs shifted)", () => {
  const [line] = client("download", VIP, "80", "/big");
  assert.is(line, `200 ${BIG_BYTES} ${bigSum()}`);
});

e2e("a 5 MiB upload arrives whole (client data shifted, server ACKs and SACKs mapped back)", () => {
  assert.equal(client("put", VIP, "80", String(BIG_BYTES)), ["201"]);
  const body = storedUpload(dir);
  assert.equal([body.length, byteSum(body)], [BIG_BYTES, bigSum()]);
  const created = servers.flatMap((s) => s.log()).filter((l) => l.split(" ")[1] === "201");
  assert.equal(created.map((l) => l.split(" ")[0]), [CL], "nginx logged the PUT with the client's address");
});

e2e("IPv6: the v2 header carries the client's IPv6 address", () => {
  assert.equal(client("http", VIP6, "80", "2"), [`rs1 ${CL6}`, `rs1 ${CL6}`]);
});

e2e("-E to v1: the text header works the same", () => {
  assert.is(cli(["-E", "-t", `${VIP}:80`, "-s", "rr", "--proxy-protocol", "v1"]).code, 0);
  const lines = client("http", VIP, "80", "2");
  assert.equal(lines.sort(), [`rs1 ${CL}`, `rs2 ${CL}`]);
  const [line] = client("download", VIP, "80", "/big");
  assert.is(line, `200 ${BIG_BYTES} ${bigSum()}`);
});

e2e("without --proxy-protocol nginx refuses the connection (the check can fail)", () => {
  assert.is(cli(["-E", "-t", `${VIP}:80`, "-s", "rr"]).code, 0);
  assert.match(client("http", VIP, "80", "1")[0], /^(error|$)/);
});

e2e.run();
