// End to end, operations: the Prometheus endpoint (parses; node_ipvs_* equal -L --stats),
// -L --json; the state file surviving kill -9 (same -S, traffic flows, nothing left over
// or duplicated); the rules file reloaded by SIGHUP with an established connection kept;
// JSON logs, SIGTERM and exit codes of the container entrypoint.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CL, RS, Topology, VIP, sh } from "../../scripts/topology.ts";
import { BIN, BUN, ROOT, e2eSocket, ensureBinary, keepAliveClient, tslb } from "../helpers/tslb.ts";
import { parsePromText } from "../helpers/prom_text.ts";

ensureBinary();
const topo = new Topology("e2eops");
const socket = e2eSocket("ops");
const dir = dirname(socket);
const lb = () => topo.ns.lb;
const cli = (args: string[], stdin?: string) => tslb(lb(), socket, args, { stdin });
const client = (...args: string[]) => topo.exec(topo.ns.cl, [BUN, join(ROOT, "scripts/client.ts"), ...args], true).out.trim().split("\n");
const servers: ReturnType<typeof Bun.spawn>[] = [];

/** A foreground daemon (the container entrypoint) in the balancer's namespace; its stderr is collected. */
const live = new Set<Foreground>();

class Foreground {
  readonly proc: ReturnType<typeof Bun.spawn>;
  err = "";
  private readonly reading: Promise<void>;
  constructor(args: string[], env: Record<string, string> = {}) {
    const proc = Bun.spawn(["ip", "netns", "exec", lb(), BIN, "--daemon", "--foreground", "--socket", socket, ...args],
      { stdout: "ignore", stderr: "pipe", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env } });
    this.proc = proc;
    live.add(this);
    proc.exited.then(() => live.delete(this));
    this.reading = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stderr) this.err += dec.decode(chunk);
    })();
  }
  /** Waits until stderr matches `re` (the daemon's log), at most `ms`. */
  async waitFor(re: RegExp, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const m = re.exec(this.err);
      if (m) return m[0];
      if (this.proc.exitCode !== null) break;
      await Bun.sleep(20);
    }
    throw new Error(`no ${re} in the daemon's log (exit ${this.proc.exitCode}):\n${this.err}`);
  }
  async exit(): Promise<number> {
    const code = await this.proc.exited;
    await this.reading;
    return code;
  }
}

const RULES = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS[0]}:8080 -m --check http --check-interval 0.5
-a -t ${VIP}:80 -r ${RS[1]}:8080 -m -w 2 -x 100 -y 10
-A -u ${VIP}:53 -s wrr
-a -u ${VIP}:53 -r ${RS[0]}:5353 -m --check udp
`;

const ops = suite("e2e operations");

ops.before(async () => {
  topo.up();
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < 2; i++) {
    const p = Bun.spawn(["ip", "netns", "exec", i ? topo.ns.rs2 : topo.ns.rs1, BUN, join(ROOT, "scripts/servers.ts"), `rs${i + 1}`, RS[i], "8080", "5353"],
      { stdout: "pipe", stderr: "inherit", env: { ...process.env, TSLB_SERVER_TTL: "240" } });
    servers.push(p);
    const reader = p.stdout.getReader();
    await reader.read();
    reader.releaseLock();
  }
});

/** A failed test leaves no daemon behind for the next one. */
ops.after.each(async () => {
  for (const d of live) { d.proc.kill("SIGTERM"); await d.exit(); }
});

ops.after(() => {
  tslb(lb(), socket, ["--shutdown"]);
  for (const p of servers) p.kill();
  topo.destroy();
});

ops("/metrics parses as Prometheus text and its node_ipvs series match -L -n --stats", async () => {
  const d = new Foreground(["--metrics", "127.0.0.1:9100", "--state", join(dir, "state")]);
  await d.waitFor(/start: ready/);
  assert.match(d.err, /metrics: Prometheus metrics on http:\/\/127\.0\.0\.1:9100\/metrics/);
  assert.equal([cli(["-R"], RULES).err, cli(["-R"], "").code], ["", 0]);
  // The checks' first results are in (they start staggered over one interval).
  for (let i = 0; i < 100 && !/http +up .*\n.*udp +up/s.test(cli(["-L", "-n", "--health"]).out); i++) await Bun.sleep(50);
  assert.is(client("http", VIP, "80", "9").length, 9);
  assert.match(client("udp", VIP, "53", "x")[0], /^rs1 /);
  const text = topo.exec(lb(), ["curl", "-sS", "-m", "5", "http://127.0.0.1:9100/metrics"]).out;
  const m = parsePromText(text);
  const one = (name: string, labels: Record<string, string> = {}) => {
    const f = m.get(name);
    assert.ok(f, `${name} missing`);
    const s = f!.samples.filter((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    assert.is(s.length, 1, `${name} ${JSON.stringify(labels)}: ${s.length} samples`);
    return s[0].value;
  };
  // The five totals equal the sums of the services' counters as --stats --exact prints them.
  const rows = cli(["-L", "-n", "--stats", "--exact"]).out.split("\n").filter((l) => /^(TCP|UDP) /.test(l)).map((l) => l.trim().split(/\s+/).slice(2).map(Number));
  const sum = (k: number) => rows.reduce((a, r) => a + r[k], 0);
  assert.equal(
    ["connections", "incoming_packets", "outgoing_packets", "incoming_bytes", "outgoing_bytes"].map((n) => one(`node_ipvs_${n}_total`)),
    [0, 1, 2, 3, 4].map(sum));
  assert.is(sum(0), 10);
  for (const n of ["connections", "incoming_packets", "outgoing_packets", "incoming_bytes", "outgoing_bytes"]) assert.is(m.get(`node_ipvs_${n}_total`)!.type, "counter");
  // Backends: node_exporter's six labels; weight, ActiveConn and InActConn as -L shows them.
  const b = { local_address: VIP, local_port: "80", remote_address: RS[1], remote_port: "8080", proto: "TCP", local_mark: "" };
  assert.equal(Object.keys(m.get("node_ipvs_backend_weight")!.samples[0].labels), ["local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"]);
  assert.is(one("node_ipvs_backend_weight", b), 2);
  const list = cli(["-L", "-n"]).out;
  const row = list.split("\n").find((l) => l.startsWith(`  -> ${RS[1]}:8080`))!.trim().split(/\s+/);
  assert.equal([one("node_ipvs_backend_connections_active", b), one("node_ipvs_backend_connections_inactive", b)], [Number(row[4]), Number(row[5])]);
  assert.is(one("node_ipvs_backend_connections_inactive", { ...b, proto: "UDP", local_port: "53", remote_address: RS[0], remote_port: "5353" }), 1);
  // tslb's own series.
  assert.is(one("tslb_connection_table_capacity"), 1 << 20);
  assert.ok(one("tslb_connection_table_entries") >= 10);
  assert.is(one("tslb_drops_total", { reason: "no_dest" }), 0);
  assert.ok(one("tslb_worker_packets_total", { worker: "0", kind: "rx" }) > 0);
  assert.is(one("tslb_rule_applies_total", { source: "restore", result: "ok" }), 1);
  assert.is(one("tslb_backend_health_state", { remote_address: RS[0], local_port: "80", state: "up" }), 1);
  assert.is(one("tslb_backend_available", b), 1);
  assert.is(one("tslb_backend_connections_total", b) + one("tslb_backend_connections_total", { ...b, remote_address: RS[0] }), 9);
  // Only /metrics is served.
  assert.is(topo.exec(lb(), ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9100/"]).out, "404");
  // -L --json: the same counters, services in -L order, health included.
  const j = JSON.parse(cli(["-L", "-n", "--json"]).out);
  assert.equal(j.services.map((s: { proto: string; port: number }) => `${s.proto}/${s.port}`), ["TCP/80", "UDP/53"]);
  assert.is(j.services[0].stats.conns + j.services[1].stats.conns, sum(0));
  const d1 = j.services[0].destinations[0];
  assert.equal([d1.address, d1.port, d1.forward, d1.weight, d1.health.check, d1.health.state], [RS[0], 8080, "Masq", 1, "http", "up"]);
  assert.is(j.services[0].destinations[1].health, null);
  assert.equal([j.services[0].destinations[1].uThreshold, j.services[0].destinations[1].lThreshold], [100, 10]);
  const c = JSON.parse(cli(["-L", "-n", "-c", "--json"]).out);
  assert.is(c.connections.length, cli(["-L", "-n", "-c"]).out.trim().split("\n").length - 2);
  assert.ok(c.connections.some((x: { proto: string; client: { address: string }; destination: { port: number } }) =>
    x.proto === "UDP" && x.client.address === CL && x.destination.port === 5353));
  d.proc.kill("SIGTERM");
  assert.is(await d.exit(), 0);
  assert.match(d.err, /stop: stopped \(exit 0\)/);
});

ops("kill -9, then a new daemon with the same --state: -S identical, traffic flows, nothing duplicated or left over", async () => {
  const state = join(dir, "state");
  // The state file of the previous test holds RULES: it is -R input, with thresholds kept.
  const saved = readFileSync(state, "utf8");
  assert.match(saved, /^# tslb state/);
  assert.match(saved, `-a -t ${VIP}:80 -r ${RS[1]}:8080 -m -w 2 -x 100 -y 10\n`);
  const d1 = new Foreground(["--state", state]);
  await d1.waitFor(/start: ready/);
  assert.match(d1.err, /rules: state: 2 services added, 3 destinations added/);
  assert.is(cli(["-a", "-t", `${VIP}:80`, "-r", "198.18.1.13:8080", "-m", "-w", "0"]).code, 0);
  const before = cli(["-S", "-n"]).out;
  assert.match(readFileSync(state, "utf8"), "198.18.1.13:8080 -m -w 0\n", "written after the change");
  const rulesBefore = topo.ip(lb(), "rule");
  d1.proc.kill("SIGKILL");
  assert.is(await d1.exit(), 137);
  assert.ok(existsSync(socket), "the dead daemon left its socket file");
  assert.match(topo.ip(lb(), "rule"), /29001:\s+from 198\.18\.1\.11 ipproto tcp sport 8080 lookup 29811/, "and its policy rules");

  const d2 = new Foreground(["--state", state]);
  await d2.waitFor(/start: ready/);
  assert.is(cli(["-S", "-n"]).out, before);
  assert.is(topo.ip(lb(), "rule"), rulesBefore, "the same rules, none twice");
  const lines = topo.ip(lb(), "rule").trim().split("\n");
  assert.is(new Set(lines).size, lines.length);
  assert.is(topo.ip(lb(), "link", "show").match(/tslb0/g)!.length, 1);
  assert.equal(client("http", VIP, "80", "4").sort(), [`rs1 ${CL}`, `rs1 ${CL}`, `rs2 ${CL}`, `rs2 ${CL}`]);
  d2.proc.kill("SIGTERM");
  assert.is(await d2.exit(), 0);
  // What the first daemon left behind is gone with the second one.
  assert.not.match(topo.ip(lb(), "rule"), /29000|29001/);
  assert.is(topo.ip(lb(), "route", "show", "table", "all").includes("tslb0"), false);
});

ops("SIGHUP reloads the rules file atomically; an established connection survives", async () => {
  const rules = join(dir, "rules.txt");
  writeFileSync(rules, `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS[0]}:8080 -m\n-a -t ${VIP}:80 -r ${RS[1]}:8080 -m\n`);
  const d = new Foreground(["--rules", rules, "--log-json"]);
  await d.waitFor(/"event":"start"/);
  const ka = keepAliveClient(topo.ns.cl, VIP, "80");
  const ask = () => ka.ask();
  const first = await ask();
  assert.match(first, /^rs[12] /);
  // The new file: a second service, the other server's weight changed, a timeout set.
  writeFileSync(rules, `--set 600 0 0\n-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r ${RS[0]}:8080 -m -w 3\n-a -t ${VIP}:80 -r ${RS[1]}:8080 -m -w 3\n-A -t ${VIP}:81 -s rr\n-a -t ${VIP}:81 -r ${RS[0]}:8080 -m\n`);
  d.proc.kill("SIGHUP");
  await d.waitFor(/"event":"rules","pid":\d+,"msg":"reload: [^"]+"/);
  assert.is(cli(["-S", "-n"]).out, `-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r ${RS[0]}:8080 -m -w 3\n-a -t ${VIP}:80 -r ${RS[1]}:8080 -m -w 3\n-A -t ${VIP}:81 -s rr\n-a -t ${VIP}:81 -r ${RS[0]}:8080 -m -w 1\n`);
  assert.is(cli(["-L", "--timeout"]).out, "Timeout (tcp tcpfin udp): 600 120 300\n");
  assert.is(await ask(), first, "the open connection still reaches its server");
  assert.match(client("http", VIP, "81", "1")[0], /^rs1 /);
  // A broken file: the reload fails, the running rules stay.
  const good = cli(["-S", "-n"]).out;
  writeFileSync(rules, `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:99 -r ${RS[0]}:8080 -m\n`);
  d.proc.kill("SIGHUP");
  await d.waitFor(/"level":"error","event":"error","pid":\d+,"msg":"reload failed, the running rules stay: [^"]*line 2: Service not defined"/);
  assert.is(cli(["-S", "-n"]).out, good);
  assert.is(await ask(), first);
  ka.stop();
  d.proc.kill("SIGINT");
  assert.is(await d.exit(), 0);
  for (const line of d.err.trim().split("\n")) JSON.parse(line); // every log line is JSON
});

ops("entrypoint exit codes: 1 when it cannot start (and nothing is left), 2 for a bad option", async () => {
  const bad = new Foreground(["--rules", join(dir, "missing.txt")]);
  assert.is(await bad.exit(), 1);
  assert.match(bad.err, /error: cannot start: ENOENT/);
  assert.is(sh(["ip", "-n", lb(), "link", "show", "tslb0"], true).code !== 0, true, "tslb0 removed");
  const opt = new Foreground(["--metrics", "nope"]);
  assert.is(await opt.exit(), 2);
  assert.match(opt.err, /--metrics wants \[ADDR:\]PORT, not 'nope'/);
});

ops.run();
