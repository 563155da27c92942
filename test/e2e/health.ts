// End to end, health checks: rr over two real servers behind NAT, checked with tcp, http
// and udp. Stopping one server's process takes it out within interval × fall (+ the
// swap), after which every request succeeds on the other; restarting it brings traffic
// back within rise × interval; the rules (-S, weights) never change. Then direct routing
// with --check-via-vip: a real server that lacks the VIP on lo fails its check although
// its own address answers.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DR_RS, DR_VIP, DrTopology, RS, Topology, VIP } from "../../scripts/topology.ts";
import { BUN, ROOT, e2eSocket, ensureBinary, tslb } from "../helpers/tslb.ts";

const INTERVAL_MS = 1000, FALL = 3, RISE = 2;
const CHECK = `--check-interval ${INTERVAL_MS / 1000} --check-timeout 0.5 --check-fall ${FALL} --check-rise ${RISE}`;
const RULES = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS[0]}:8080 -m --check tcp ${CHECK}
-a -t ${VIP}:80 -r ${RS[1]}:8080 -m --check tcp ${CHECK}
-A -t ${VIP}:81 -s rr
-a -t ${VIP}:81 -r ${RS[0]}:8080 -m --check http --check-path /healthz ${CHECK}
-a -t ${VIP}:81 -r ${RS[1]}:8080 -m --check http --check-path /healthz ${CHECK}
-A -u ${VIP}:53 -s rr
-a -u ${VIP}:53 -r ${RS[0]}:5353 -m --check udp ${CHECK}
-a -u ${VIP}:53 -r ${RS[1]}:5353 -m --check udp ${CHECK}
`;

ensureBinary();
const topo = new Topology("e2ehealth");
const socket = e2eSocket("health");
const logFile = join(dirname(socket), "tslb.log");
const lb = () => topo.ns.lb;
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin, env: { TSLB_VIP_DEV: topo.vipDev } });
const servers: (ReturnType<typeof Bun.spawn> | null)[] = [null, null];

/** Starts real server i (rs1/rs2) and resolves once it listens; returns the epoch ms of "ready". */
async function startServer(i: number): Promise<number> {
  const ns = i === 0 ? topo.ns.rs1 : topo.ns.rs2;
  const p = Bun.spawn(["timeout", "300", "ip", "netns", "exec", ns, BUN, join(ROOT, "scripts/servers.ts"), `rs${i + 1}`, RS[i], "8080", "5353"],
    { stdout: "pipe", stderr: "inherit", env: { ...process.env, TSLB_SERVER_TTL: "240" } });
  servers[i] = p;
  const reader = p.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /^ready/);
  reader.releaseLock();
  return Date.now();
}

interface Req { t: number; ms: number; ok: boolean; body?: string; err?: string }

/**
 * A client loop. The two TCP services share their real servers' port, so their loops run
 * from different clients: from one client, a source port reused across the two services
 * makes two connection entries with the same reply tuple (RIP:8080 ↔ client:port).
 */
function loop(ns: string, mode: "http" | "udp", port: number, durationMs: number): Promise<Req[]> {
  const p = Bun.spawn(["timeout", "90", "ip", "netns", "exec", ns, BUN, join(ROOT, "test/helpers/request_loop.ts"), mode, VIP, String(port), String(durationMs), "40"],
    { stdout: "pipe", stderr: "inherit" });
  return new Response(p.stdout).text().then((t) => t.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Req));
}

/** Epoch ms of the health transition of `dest` in service `svc` to `to` logged after `after`. */
function transitionAt(svc: string, dest: string, to: "up" | "down", after: number): number {
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    const m = /^(\S+) tslb\[\d+\] health: (\S+) of (\S+ \S+): \S+ -> (\S+) /.exec(line);
    if (!m || m[2] !== dest || m[3] !== svc || m[4] !== to) continue;
    const t = Date.parse(m[1]);
    if (t >= after) return t;
  }
  throw new Error(`no ${to} transition of ${dest} in ${svc} after ${new Date(after).toISOString()}:\n${readFileSync(logFile, "utf8")}`);
}

const health = suite("e2e health checks (NAT, rr, tcp/http/udp)");

health.before(async () => {
  topo.up();
  await startServer(0);
  await startServer(1);
});

health.after(() => {
  tslb(lb(), socket, ["--shutdown"]);
  for (const p of servers) p?.kill();
  topo.destroy();
});

health("rules with checks load; -S writes the check options back after the ipvsadm ones", async () => {
  const r = cli(["-R"], RULES);
  assert.equal([r.code, r.err], [0, ""]);
  const save = cli(["-S", "-n"]).out;
  assert.match(save, `-a -t ${VIP}:80 -r ${RS[1]}:8080 -m -w 1 --check tcp --check-interval 1 --check-timeout 0.5\n`);
  assert.match(save, `-a -t ${VIP}:81 -r ${RS[0]}:8080 -m -w 1 --check http --check-path /healthz --check-interval 1 --check-timeout 0.5\n`);
  assert.match(save, `-a -u ${VIP}:53 -r ${RS[0]}:5353 -m -w 1 --check udp --check-interval 1 --check-timeout 0.5\n`);
  // Checks start staggered within one interval; all up after the first round.
  await Bun.sleep(INTERVAL_MS + 700);
  const h = cli(["-L", "-n", "--health"]).out;
  assert.is(h.split("\n").filter((l) => / (tcp|http|udp) +up +/.test(l)).length, 6, h);
});

health("stopping rs2: out within interval × fall + 1 s, then zero failed requests; back within rise × interval + 1 s", async () => {
  const DURATION = 15_000;
  const t0 = Date.now();
  const loops = [loop(topo.ns.cl, "http", 80, DURATION), loop(topo.ns.cl2, "http", 81, DURATION), loop(topo.ns.cl, "udp", 53, DURATION)];
  await Bun.sleep(2500);
  const stopAt = Date.now();
  servers[1]!.kill("SIGTERM"); // timeout(1) passes it on to the server
  await servers[1]!.exited;
  await Bun.sleep(5000);
  // Down, with the configured weight kept and the rules unchanged.
  const h = cli(["-L", "-n", "--health"]).out;
  assert.match(h, new RegExp(`  -> ${RS[1].replace(/\./g, "\\.")}:8080 +tcp +down +\\S+ \\S+ +failed \\d+ ms: ECONNREFUSED`), h);
  assert.match(h, new RegExp(`  -> ${RS[1].replace(/\./g, "\\.")}:8080 +http +down .*failed \\d+ ms: ECONNREFUSED`), h);
  assert.match(h, new RegExp(`  -> ${RS[1].replace(/\./g, "\\.")}:5353 +udp +down .*failed \\d+ ms: ECONNREFUSED`), h);
  assert.match(cli(["-L", "-n"]).out, `  -> ${RS[1]}:8080             Masq    1      `);
  const json = JSON.parse(cli(["-L", "-n", "--json"]).out);
  const d80 = json.services.find((s: { port: number }) => s.port === 80).destinations.find((d: { address: string }) => d.address === RS[1]);
  assert.equal([d80.weight, d80.health.state, d80.health.available, d80.health.last.ok], [1, "down", false, false]);

  const restartAt = await startServer(1);
  const results = await Promise.all(loops);
  const names = ["TCP 198.18.0.100:80", "TCP 198.18.0.100:81", "UDP 198.18.0.100:53"];
  const dests = [`${RS[1]}:8080`, `${RS[1]}:8080`, `${RS[1]}:5353`];
  results.forEach((reqs, k) => {
    const what = names[k];
    assert.ok(reqs.length > 50, `${what}: ${reqs.length} requests`);
    const downAt = transitionAt(what, dests[k], "down", stopAt);
    const upAt = transitionAt(what, dests[k], "up", restartAt);
    const detectMs = downAt - stopAt;
    assert.ok(detectMs <= INTERVAL_MS * FALL + 1000, `${what}: detected ${detectMs} ms after the stop`);
    // After detection (plus the compile-and-swap, well under 100 ms): every request succeeds, on rs1.
    const after = reqs.filter((r) => r.t > downAt + 100 && r.t + r.ms < restartAt);
    const failed = after.filter((r) => !r.ok || !r.body!.startsWith("rs1 "));
    assert.is(failed.length, 0, `${what}: ${failed.length} of ${after.length} failed after detection: ${JSON.stringify(failed.slice(0, 3))}`);
    assert.ok(after.length > 20, `${what}: ${after.length} requests between detection and restart`);
    const failedBefore = reqs.filter((r) => r.t >= stopAt && r.t <= downAt && !r.ok).length;
    // Traffic comes back: rs2 answers again within rise × interval + 1 s of its restart.
    const back = reqs.find((r) => r.t > restartAt && r.ok && r.body!.startsWith("rs2 "));
    assert.ok(back, `${what}: rs2 never answered after its restart`);
    const backMs = back!.t + back!.ms - restartAt;
    assert.ok(backMs <= RISE * INTERVAL_MS + 1000, `${what}: traffic back ${backMs} ms after the restart`);
    assert.ok(upAt - restartAt <= RISE * INTERVAL_MS + 1000, `${what}: up ${upAt - restartAt} ms after the restart`);
    // No failure after the recovery either.
    const late = reqs.filter((r) => r.t > upAt + 100 && !r.ok);
    assert.is(late.length, 0, `${what}: failures after recovery: ${JSON.stringify(late.slice(0, 3))}`);
    const slowest = Math.max(...after.map((r) => r.ms));
    console.log(`    ${what}: detected in ${detectMs} ms (${failedBefore} requests failed before), ${after.length} ok after (slowest ${slowest} ms), ` +
      `up ${upAt - restartAt} ms and traffic back ${backMs} ms after the restart (${reqs.length} requests in ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  });
});

health("-S is unchanged by the outage: weight 1 and the check options", () => {
  const save = cli(["-S", "-n"]).out;
  assert.is(save.split("\n").filter((l) => l.startsWith("-a ")).length, 6);
  for (const l of save.split("\n").filter((x) => x.startsWith("-a "))) assert.match(l, / -m -w 1 --check (tcp|http|udp) /);
  const log = readFileSync(logFile, "utf8");
  assert.match(log, /tslb\[\d+\] start: ready/);
  assert.match(log, /tslb\[\d+\] rules: restore: 3 services added, 6 destinations added/);
});

health("-e --check none stops checking; -e without check options keeps the check", () => {
  assert.is(cli(["-e", "-t", `${VIP}:80`, "-r", `${RS[0]}:8080`, "-m", "-w", "2"]).code, 0);
  assert.match(cli(["-S", "-n"]).out, `-a -t ${VIP}:80 -r ${RS[0]}:8080 -m -w 2 --check tcp --check-interval 1 --check-timeout 0.5\n`);
  assert.is(cli(["-e", "-t", `${VIP}:80`, "-r", `${RS[0]}:8080`, "-m", "--check", "none"]).code, 0);
  assert.match(cli(["-S", "-n"]).out, `-a -t ${VIP}:80 -r ${RS[0]}:8080 -m -w 1\n`);
  assert.match(cli(["-L", "-n", "--health", "-t", `${VIP}:80`]).out, `  -> ${RS[0]}:8080             none  -       -                        -\n`);
});

health.run();

// ---

const dr = suite("e2e --check-via-vip (direct routing)");
const drTopo = new DrTopology("e2ehvia");
const drSocket = e2eSocket("hvia");
const drCli = (args: string[], stdin?: string) => tslb(drTopo.ns.lb, drSocket, args, { stdin, env: { TSLB_BRIDGE: drTopo.bridge } });
const drServers: ReturnType<typeof Bun.spawn>[] = [];

dr.before(async () => {
  drTopo.up();
  // The director talks to its real servers itself (health checks): an address on their segment.
  drTopo.ip(drTopo.ns.lb, "addr", "add", "198.18.4.1/24", "dev", drTopo.bridge);
  // rs2 lacks the VIP on lo: a plain check of its own address passes, a check via the VIP must not.
  drTopo.ip(drTopo.ns.rs2, "addr", "del", `${DR_VIP}/32`, "dev", "lo");
  for (let i = 0; i < 2; i++) {
    const p = Bun.spawn(["timeout", "300", "ip", "netns", "exec", i ? drTopo.ns.rs2 : drTopo.ns.rs1, BUN, join(ROOT, "scripts/servers.ts"), `rs${i + 1}`, "0.0.0.0", "80", "53"],
      { stdout: "pipe", stderr: "inherit", env: { ...process.env, TSLB_SERVER_TTL: "240" } });
    drServers.push(p);
    const reader = p.stdout.getReader();
    await reader.read();
    reader.releaseLock();
  }
});

dr.after(() => {
  drCli(["--shutdown"]);
  for (const p of drServers) p.kill();
  drTopo.destroy();
});

dr("the check via the VIP fails on the server without the VIP on lo, a plain check passes; adding the VIP brings it up", async () => {
  const c = "--check http --check-interval 0.3 --check-timeout 0.25 --check-rise 1 --check-fall 1";
  const r = drCli(["-R"], `-A -t ${DR_VIP}:80 -s rr
-a -t ${DR_VIP}:80 -r ${DR_RS[0]} -g ${c} --check-via-vip
-a -t ${DR_VIP}:80 -r ${DR_RS[1]} -g ${c} --check-via-vip
-A -t ${DR_VIP}:8080 -s rr
-a -t ${DR_VIP}:8080 -r ${DR_RS[1]} -g --check tcp --check-port 80 --check-interval 0.3 --check-rise 1 --check-fall 1
`);
  assert.equal([r.code, r.err], [0, ""]);
  assert.match(drCli(["-S", "-n"]).out, `-a -t ${DR_VIP}:80 -r ${DR_RS[0]}:80 -g -w 1 --check http --check-interval 0.3 --check-timeout 0.25 --check-rise 1 --check-fall 1 --check-via-vip\n`);
  // The probe path: a policy rule for the probe's own source port, a table with VIP via RIP.
  const rules = drTopo.ip(drTopo.ns.lb, "rule");
  assert.match(rules, /28990:\s+from all to 198\.18\.4\.100 iif lo ipproto tcp sport 2910[12] lookup 2995[34]/, rules);
  await Bun.sleep(1500);
  const h = drCli(["-L", "-n", "--health"]).out;
  assert.match(h, new RegExp(`TCP  ${DR_VIP.replace(/\./g, "\\.")}:80 rr\\n  -> 198\\.18\\.4\\.11:80 +http +up .*ok \\d+ ms: HTTP 200\\n  -> 198\\.18\\.4\\.12:80 +http +down .*failed \\d+ ms: timeout`), h);
  assert.match(h, /TCP  198\.18\.4\.100:8080 rr\n  -> 198\.18\.4\.12:8080 +tcp +up /, h);
  drTopo.ip(drTopo.ns.rs2, "addr", "add", `${DR_VIP}/32`, "dev", "lo");
  await Bun.sleep(1200);
  assert.match(drCli(["-L", "-n", "--health"]).out, /  -> 198\.18\.4\.12:80 +http +up .*ok \d+ ms: HTTP 200/);
  assert.is(drCli(["--shutdown"]).code, 0);
  const after = drTopo.ip(drTopo.ns.lb, "rule");
  assert.not.match(after, /28990/, "probe rules removed at shutdown");
  assert.is(drTopo.ip(drTopo.ns.lb, "route", "show", "table", "all").includes("198.18.4.100 via"), false);
});

dr.run();
