// The /metrics text: it parses strictly (test/helpers/prom_text.ts), node_ipvs_* carry
// node_exporter's names, help texts, types and six labels (fwmark services as
// /proc/net/ip_vs shows them), tslb_* series are there, label values are escaped.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { emptyRuleSet, type RuleSet } from "../../src/control/model.ts";
import { escapeLabel, formatMetrics, type MetricsInput } from "../../src/stats/prometheus.ts";
import { listReply, stats } from "../helpers/list_view.ts";
import { parsePromText } from "../helpers/prom_text.ts";

function rules(): RuleSet {
  const r = emptyRuleSet();
  const svc = (kind: "tcp" | "udp" | "fwm", addr: string, port: number, fwmark = 0, af: 4 | 6 = 4) => ({
    key: { kind, af, addr, port, fwmark }, sched: "rr", schedFlags: 0, persistent: false, timeoutSec: 0,
    netmask: af === 6 ? "128" : "255.255.255.255", pe: "", ops: false, laddrs: [], proxyProtocol: 0 as const, dests: [] as RuleSet["services"][number]["dests"],
  });
  const dest = (addr: string, port: number, weight: number) => ({
    af: (addr.includes(":") ? 6 : 4) as 4 | 6, addr, port, fwd: "masq" as const, weight, uThreshold: 0, lThreshold: 0,
    tunType: "ipip" as const, tunPort: 0, tunCsum: "nocsum" as const,
  });
  const a = svc("tcp", "198.18.0.100", 80);
  a.dests.push(dest("198.18.1.11", 8080, 3), dest("198.18.1.12", 8080, 1));
  const b = svc("fwm", "", 0, 255);
  b.dests.push(dest("198.18.1.13", 0, 1));
  const c = svc("udp", "2001:2::100", 53, 0, 6);
  c.dests.push(dest("2001:2::11", 5353, 1));
  r.services.push(a, b, c);
  return r;
}

function input(): MetricsInput {
  const reply = listReply(rules(), {
    "tcp 198.18.0.100 80": { stats: stats(10, 60, 50, 6000, 70000) },
    "198.18.1.11 8080": { activeConns: 2, inactConns: 5, stats: stats(7, 40, 30, 4000, 50000) },
    "198.18.1.12 8080": { activeConns: 0, inactConns: 3, stats: stats(3, 20, 20, 2000, 20000) },
  });
  reply.services[0].dests[0].health = {
    check: "http", state: "down", available: false, last: { ok: false, ms: 12, detail: "HTTP 503 (want 2xx/3xx)" },
    lastCheckMs: 1_700_000_000_000, changedMs: 1_700_000_000_000, transitions: 2,
  };
  return {
    totals: stats(11, 61, 50, 6100, 70000), services: reply.services, drops: { no_dest: 4, table_full: 0 },
    conntrack: { entries: 17, capacity: 1024 }, workers: [{ rx: 100, tx: 90, pass: 1, gso_rx: 3, segmented: 0, coalesced: 2, joined: 5, xdp_rx: 0, xdp_tun: 0, xdp_dr: 0, offloaded: 2 }],
    applies: { "cli|ok": 3, "restore|error": 1 }, startTimeSec: 1_700_000_000,
  };
}

const prom = suite("formatMetrics");

prom("parses; node_ipvs totals are node_exporter's counters, without labels", () => {
  const m = parsePromText(formatMetrics(input()));
  const totals = ["connections", "incoming_packets", "outgoing_packets", "incoming_bytes", "outgoing_bytes"];
  assert.equal(totals.map((n) => m.get(`node_ipvs_${n}_total`)!.samples), [11, 61, 50, 6100, 70000].map((value) => [{ labels: {}, value }]));
  assert.is(m.get("node_ipvs_connections_total")!.help, "The total number of connections made.");
  assert.is(m.get("node_ipvs_incoming_bytes_total")!.help, "The total amount of incoming data.");
  for (const n of totals) assert.is(m.get(`node_ipvs_${n}_total`)!.type, "counter");
});

prom("node_ipvs backend gauges: six labels in node_exporter's order; fwmark and IPv6 as /proc/net/ip_vs gives them", () => {
  const m = parsePromText(formatMetrics(input()));
  const w = m.get("node_ipvs_backend_weight")!;
  assert.is(w.type, "gauge");
  assert.is(w.help, "The current backend weight by local and remote address.");
  assert.equal(w.samples, [
    { labels: { local_address: "198.18.0.100", local_port: "80", remote_address: "198.18.1.11", remote_port: "8080", proto: "TCP", local_mark: "" }, value: 3 },
    { labels: { local_address: "198.18.0.100", local_port: "80", remote_address: "198.18.1.12", remote_port: "8080", proto: "TCP", local_mark: "" }, value: 1 },
    { labels: { local_address: "", local_port: "0", remote_address: "198.18.1.13", remote_port: "0", proto: "FWM", local_mark: "000000FF" }, value: 1 },
    { labels: { local_address: "2001:2::100", local_port: "53", remote_address: "2001:2::11", remote_port: "5353", proto: "UDP", local_mark: "" }, value: 1 },
  ]);
  assert.equal(m.get("node_ipvs_backend_connections_active")!.samples.map((s) => s.value), [2, 0, 0, 0]);
  assert.equal(m.get("node_ipvs_backend_connections_inactive")!.samples.map((s) => s.value), [5, 3, 0, 0]);
});

prom("tslb series: per-backend counters, health as a state set, drops, table, workers, applies", () => {
  const m = parsePromText(formatMetrics(input()));
  const v = (name: string, labels: Record<string, string>) =>
    m.get(name)!.samples.filter((s) => Object.entries(labels).every(([k, x]) => s.labels[k] === x)).map((s) => s.value);
  assert.equal(v("tslb_backend_connections_total", { remote_address: "198.18.1.11" }), [7]);
  assert.equal(v("tslb_service_outgoing_bytes_total", { local_port: "80" }), [70000]);
  assert.equal(v("tslb_backend_available", { remote_address: "198.18.1.11" }), [0]);
  assert.equal(v("tslb_backend_available", { remote_address: "198.18.1.12" }), [1], "unchecked: available");
  assert.equal(["unknown", "up", "down"].map((state) => v("tslb_backend_health_state", { state, check: "http" })[0]), [0, 0, 1]);
  assert.is(m.get("tslb_backend_health_state")!.samples.length, 3, "only checked backends");
  assert.equal(v("tslb_backend_health_transitions_total", {}), [2]);
  assert.equal(v("tslb_backend_health_last_check_seconds", {}), [0.012]);
  assert.equal(v("tslb_drops_total", { reason: "no_dest" }), [4]);
  assert.equal([v("tslb_connection_table_entries", {}), v("tslb_connection_table_capacity", {})], [[17], [1024]]);
  assert.equal(v("tslb_worker_packets_total", { worker: "0" }), [100, 90, 1, 3, 0, 2, 5, 0, 0, 0]);
  assert.equal(v("tslb_bulk_offloaded_connections_total", { worker: "0" }), [2]);
  assert.equal(v("tslb_rule_applies_total", { source: "restore", result: "error" }), [1]);
  assert.equal(v("tslb_start_time_seconds", {}), [1_700_000_000]);
  for (const [name, f] of m) if (name.endsWith("_total")) assert.is(f.type, "counter", name);
});

prom("empty rules still give every family (no samples for backends)", () => {
  const i = input();
  const m = parsePromText(formatMetrics({ ...i, services: [] }));
  assert.is(m.get("node_ipvs_backend_weight")!.samples.length, 0);
  assert.is(m.get("node_ipvs_connections_total")!.samples.length, 1);
});

prom("label values are escaped", () => {
  assert.is(escapeLabel('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const i = input();
  const m = parsePromText(formatMetrics({ ...i, drops: { 'odd"name\\x\n': 1 } }));
  assert.equal(m.get("tslb_drops_total")!.samples[0].labels, { reason: 'odd"name\\x\n' });
});

prom.run();
