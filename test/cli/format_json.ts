// -L --json and -L -c --json: numeric addresses whatever -n says, -L's order (or kernel
// order with --nosort), raw counters, rates under their own names, health or null, one
// service with -t, "No such service" as -L.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { ListOptions } from "../../src/control/commands.ts";
import { emptyRuleSet, type RuleSet } from "../../src/control/model.ts";
import type { ConnView } from "../../src/control/protocol.ts";
import { formatConnsJson, formatListJson } from "../../src/cli/format_json.ts";
import { listReply, stats } from "../helpers/list_view.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";

const O: ListOptions = {
  numeric: false, connections: false, timeout: false, daemon: false, stats: false, rate: false,
  thresholds: false, persistentConn: false, tunInfo: false, exact: false, nosort: false, json: true,
};

function rules(): RuleSet {
  const r = emptyRuleSet();
  const dest = (addr: string, port: number, weight: number, fwd: "masq" | "route" | "tunnel" = "masq") => ({
    af: 4 as const, addr, port, fwd, weight, uThreshold: 0, lThreshold: 0, tunType: "ipip" as const, tunPort: 0, tunCsum: "nocsum" as const,
  });
  const svc = (kind: "tcp" | "udp", addr: string, port: number) => ({
    key: { kind, af: 4 as const, addr, port, fwmark: 0 }, sched: "wrr", schedFlags: 0, persistent: true, timeoutSec: 300,
    netmask: "255.255.255.0", pe: "", ops: false, laddrs: [] as string[], proxyProtocol: 0 as const, dests: [] as RuleSet["services"][number]["dests"],
  });
  const web = svc("tcp", "198.18.0.100", 80);
  web.dests.push(dest("198.18.1.12", 8080, 1), dest("198.18.1.11", 8080, 3, "tunnel"));
  const dns = svc("udp", "198.18.0.53", 53);
  r.services.push(web, dns); // creation order: web first; -L sorts UDP after TCP, then by address
  return r;
}

const js = suite("formatListJson");

js("services and destinations in -L order, counters and rates, health or null", () => {
  const reply = listReply(rules(), {
    "tcp 198.18.0.100 80": { stats: stats(12345678901, 2, 3, 4, 5), rate: stats(1, 2, 3, 4, 5) },
    "198.18.1.11 8080": { activeConns: 4, inactConns: 6, persistConns: 1 },
  });
  reply.services[0].dests[0].health = {
    check: "tcp", state: "up", available: true, last: { ok: true, ms: 3, detail: "connected" },
    lastCheckMs: Date.UTC(2025, 0, 31, 12, 0, 5), changedMs: Date.UTC(2025, 0, 31, 12, 0, 0), transitions: 1,
  };
  const j = JSON.parse(formatListJson(reply, O));
  assert.equal([j.version, j.size, j.timeouts], ["1.2.1", 4096, { tcp: 900, tcpfin: 120, udp: 300 }]);
  assert.equal(j.services.map((s: { proto: string }) => s.proto), ["TCP", "UDP"]);
  const web = j.services[0];
  assert.equal(
    [web.address, web.port, web.fwmark, web.scheduler, web.flags, web.persistent, web.pe, web.ops],
    ["198.18.0.100", 80, 0, "wrr", [], { timeout: 300, netmask: "255.255.255.0" }, null, false]);
  assert.equal(web.stats, { conns: 12345678901, inpkts: 2, outpkts: 3, inbytes: 4, outbytes: 5 }, "exact, never K/M");
  assert.equal(web.rate, { cps: 1, inpps: 2, outpps: 3, inbps: 4, outbps: 5 });
  assert.equal(web.destinations.map((d: { address: string }) => d.address), ["198.18.1.11", "198.18.1.12"], "sorted as -L");
  const d0 = web.destinations[0];
  assert.equal([d0.forward, d0.weight, d0.activeConns, d0.inactConns, d0.persistConns, d0.tunnel, d0.health],
    ["Tunnel", 3, 4, 6, 1, { type: "ipip", port: 0, csum: "nocsum" }, null]);
  assert.equal(web.destinations[1].health, {
    check: "tcp", state: "up", available: true, since: "2025-01-31T12:00:00.000Z", transitions: 1,
    last: { ok: true, ms: 3, detail: "connected", at: "2025-01-31T12:00:05.000Z" },
  });
  assert.equal(j.services[1].destinations, []);
});

js("--nosort keeps kernel order; -t lists one service; a missing one is ESRCH", () => {
  const reply = listReply(rules());
  const j = JSON.parse(formatListJson(reply, { ...O, nosort: true }));
  assert.equal(j.services[0].destinations.map((d: { address: string }) => d.address), ["198.18.1.12", "198.18.1.11"]);
  const one = JSON.parse(formatListJson(reply, { ...O, key: { kind: "udp", af: 4, addr: "198.18.0.53", port: 53, fwmark: 0 } }));
  assert.equal(one.services.map((s: { port: number }) => s.port), [53]);
  throwsIpvs(() => formatListJson(reply, { ...O, key: { kind: "udp", af: 4, addr: "198.18.0.54", port: 53, fwmark: 0 } }), "No such service", 1);
});

js("full NAT: forward FullNat; laddrs and proxy_protocol only on services that set them", () => {
  const r = rules();
  r.services[0].dests[0].fwd = "fullnat";
  r.services[0].laddrs = ["198.18.0.201", "198.18.0.200"];
  r.services[0].proxyProtocol = 2;
  const j = JSON.parse(formatListJson(listReply(r), O));
  const [web, dns] = j.services;
  assert.equal(web.destinations.map((d: { forward: string }) => d.forward), ["Tunnel", "FullNat"]);
  assert.equal(web.destinations[1].tunnel, null);
  assert.equal([web.laddrs, web.proxy_protocol], [["198.18.0.201", "198.18.0.200"], "v2"]);
  assert.equal(["laddrs" in dns, "proxy_protocol" in dns], [false, false]);
});

js("-c --json", () => {
  const conns: ConnView[] = [{
    proto: "TCP", expireSec: 61, state: "ESTABLISHED", af: 4,
    caddr: "198.18.2.2", cport: 40000, vaddr: "198.18.0.100", vport: 80, daddr: "198.18.1.11", dport: 8080,
  }];
  assert.equal(JSON.parse(formatConnsJson(conns)), {
    connections: [{
      proto: "TCP", af: 4, state: "ESTABLISHED", expires: 61, client: { address: "198.18.2.2", port: 40000 },
      virtual: { address: "198.18.0.100", port: 80 }, destination: { address: "198.18.1.11", port: 8080 },
    }],
  });
  assert.equal(JSON.parse(formatConnsJson([])), { connections: [] });
});

js("-c --json: a full-NAT connection adds local (address and port toward the server)", () => {
  const c: ConnView = {
    proto: "TCP", expireSec: 61, state: "ESTABLISHED", af: 4, caddr: "198.18.2.2", cport: 40000,
    vaddr: "198.18.0.100", vport: 80, daddr: "198.18.1.11", dport: 8080, laddr: "198.18.1.1", lport: 61007,
  };
  const [j] = JSON.parse(formatConnsJson([c])).connections;
  assert.equal(j.local, { address: "198.18.1.1", port: 61007 });
  assert.equal(j.destination, { address: "198.18.1.11", port: 8080 });
});

js.run();
