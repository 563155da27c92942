// The --metrics endpoint: Prometheus text exposition format 0.0.4. formatMetrics is
// pure (data in, text out); serveMetrics is a tiny Bun.serve that answers GET /metrics
// and nothing else. The node_ipvs_* families carry node_exporter's IPVS collector names,
// help texts and labels (collector/ipvs_linux.go, through procfs's /proc/net/ip_vs
// parser) so dashboards built for it work unchanged; tslb_* adds what IPVS cannot tell.
// Everything is a counter or a gauge of current state: no rates (Prometheus derives them).
import type { ServiceView, Stats } from "../control/protocol.ts";

/** The kinds of tslb_worker_packets_total, in output order. */
export const WORKER_KINDS = ["rx", "tx", "pass", "gso_rx", "segmented", "coalesced", "joined", "xdp_rx", "xdp_tun", "xdp_dr"] as const;
/** A worker's counters: the packet kinds, and the connections it handed to the bulk offload. */
export type WorkerPackets = Record<(typeof WORKER_KINDS)[number] | "offloaded", number>;

export interface MetricsInput {
  /** Totals over every service since start (or the last full -Z): /proc/net/ip_vs_stats. */
  totals: Stats;
  services: readonly ServiceView[];
  /** Drop counts by reason name (wire/drop.ts). */
  drops: Readonly<Record<string, number>>;
  conntrack: { entries: number; capacity: number };
  /** Per data-plane worker: packets read, written, passed on unchanged, super-packets read and segmented, joined writes. */
  workers: readonly WorkerPackets[];
  /** Rule-change batches applied, by source and result ("cli|ok", "restore|error", ...). */
  applies: Readonly<Record<string, number>>;
  startTimeSec: number;
}

type Labels = Readonly<Record<string, string>>;
type Sample = readonly [Labels, number];

/** A label value escaped as the text format requires (backslash, double quote, newline). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function value(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function family(name: string, type: "counter" | "gauge", help: string, samples: readonly Sample[]): string {
  let out = `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
  for (const [labels, v] of samples) {
    const keys = Object.keys(labels);
    const l = keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",")}}` : "";
    out += `${name}${l} ${value(v)}\n`;
  }
  return out;
}

const PROTO: Readonly<Record<string, string>> = { tcp: "TCP", udp: "UDP", sctp: "SCTP", fwm: "FWM" };

/** node_exporter's service labels: fwmark services have no address, port 0 and the mark as /proc/net/ip_vs prints it (%08X). */
function serviceLabels(s: ServiceView): Record<string, string> {
  const k = s.key;
  const fwm = k.kind === "fwm";
  return {
    local_address: fwm ? "" : k.addr,
    local_port: String(fwm ? 0 : k.port),
    proto: PROTO[k.kind],
    local_mark: fwm ? (k.fwmark >>> 0).toString(16).toUpperCase().padStart(8, "0") : "",
  };
}

/** The full node_exporter backend label set, in its order. */
function backendLabels(s: ServiceView, d: ServiceView["dests"][number]): Labels {
  const sl = serviceLabels(s);
  return {
    local_address: sl.local_address, local_port: sl.local_port, remote_address: d.addr,
    remote_port: String(d.port), proto: sl.proto, local_mark: sl.local_mark,
  };
}

const STAT_FIELDS = [
  ["connections", "conns", "connections"],
  ["incoming_packets", "inpkts", "incoming packets"],
  ["outgoing_packets", "outpkts", "outgoing packets"],
  ["incoming_bytes", "inbytes", "incoming bytes"],
  ["outgoing_bytes", "outbytes", "outgoing bytes"],
] as const;

/** The whole /metrics page. */
export function formatMetrics(m: MetricsInput): string {
  const backends: { s: ServiceView; d: ServiceView["dests"][number]; l: Labels }[] = [];
  for (const s of m.services) for (const d of s.dests) backends.push({ s, d, l: backendLabels(s, d) });
  const checked = backends.filter((b) => b.d.health);
  let out = "";
  // node_exporter's IPVS collector, names and help texts as it has them.
  out += family("node_ipvs_connections_total", "counter", "The total number of connections made.", [[{}, m.totals.conns]]);
  out += family("node_ipvs_incoming_packets_total", "counter", "The total number of incoming packets.", [[{}, m.totals.inpkts]]);
  out += family("node_ipvs_outgoing_packets_total", "counter", "The total number of outgoing packets.", [[{}, m.totals.outpkts]]);
  out += family("node_ipvs_incoming_bytes_total", "counter", "The total amount of incoming data.", [[{}, m.totals.inbytes]]);
  out += family("node_ipvs_outgoing_bytes_total", "counter", "The total amount of outgoing data.", [[{}, m.totals.outbytes]]);
  out += family("node_ipvs_backend_connections_active", "gauge", "The current active connections by local and remote address.",
    backends.map((b) => [b.l, b.d.activeConns]));
  out += family("node_ipvs_backend_connections_inactive", "gauge", "The current inactive connections by local and remote address.",
    backends.map((b) => [b.l, b.d.inactConns]));
  out += family("node_ipvs_backend_weight", "gauge", "The current backend weight by local and remote address.",
    backends.map((b) => [b.l, b.d.weight]));

  // tslb's own.
  for (const [name, field, what] of STAT_FIELDS) {
    out += family(`tslb_service_${name}_total`, "counter", `Per virtual service: ${what} (-L --stats; reset by -Z).`,
      m.services.map((s) => [serviceLabels(s), s.stats[field]]));
  }
  for (const [name, field, what] of STAT_FIELDS) {
    out += family(`tslb_backend_${name}_total`, "counter", `Per real server: ${what} (-L --stats; reset by -Z).`,
      backends.map((b) => [b.l, b.d.stats[field]]));
  }
  out += family("tslb_backend_available", "gauge", "1 if the real server takes new connections as far as health checks go (weight aside), else 0.",
    backends.map((b) => [b.l, !b.d.health || b.d.health.available ? 1 : 0]));
  const states = ["unknown", "up", "down"] as const;
  out += family("tslb_backend_health_state", "gauge", "Health-check state of a checked real server: 1 for its current state, 0 for the others.",
    checked.flatMap((b) => states.map((st): Sample => [{ ...b.l, check: b.d.health!.check, state: st }, b.d.health!.state === st ? 1 : 0])));
  out += family("tslb_backend_health_transitions_total", "counter", "Health state changes of a checked real server since its check started.",
    checked.map((b) => [{ ...b.l, check: b.d.health!.check }, b.d.health!.transitions]));
  out += family("tslb_backend_health_last_check_seconds", "gauge", "Duration of the last health probe of a checked real server.",
    checked.filter((b) => b.d.health!.last).map((b) => [{ ...b.l, check: b.d.health!.check }, b.d.health!.last!.ms / 1000]));
  out += family("tslb_drops_total", "counter", "Packets the data plane dropped, by reason.",
    Object.entries(m.drops).map(([reason, n]) => [{ reason }, n]));
  out += family("tslb_connection_table_entries", "gauge", "Entries in the connection table (connections and persistence templates).",
    [[{}, m.conntrack.entries]]);
  out += family("tslb_connection_table_capacity", "gauge", "Capacity of the connection table (--conn-max).", [[{}, m.conntrack.capacity]]);
  out += family("tslb_worker_packets_total", "counter", "Packets per data-plane worker: read (rx), written (tx), passed on unchanged (pass), " +
    "TCP super-packets read (gso_rx) and cut into segments (segmented), UDP super-packets written by coalescing (coalesced), " +
    "TCP segments and pure ACKs that went out inside another segment (joined), frames taken from the XDP hand-off (xdp_rx), " +
    "of those sent on through the TUN (xdp_tun) and DR replies routed on to clients (xdp_dr).",
    m.workers.flatMap((w, i) => WORKER_KINDS.map((k): Sample => [{ worker: String(i), kind: k }, w[k]])));
  out += family("tslb_bulk_offloaded_connections_total", "counter", "Connections per data-plane worker whose bulk frames the kernel took over (--bulk-offload).",
    m.workers.map((w, i): Sample => [{ worker: String(i) }, w.offloaded]));
  out += family("tslb_rule_applies_total", "counter", "Rule-change batches (a command, a -R, a state or rules file load, a reload) by source and result.",
    Object.entries(m.applies).map(([k, n]) => {
      const [source, result] = k.split("|");
      return [{ source, result }, n];
    }));
  out += family("tslb_start_time_seconds", "gauge", "Start time of the daemon since the Unix epoch.", [[{}, m.startTimeSec]]);
  return out;
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Serves GET /metrics on hostname:port; anything else is 404 (405 for another method). Returns a stop function. */
export function serveMetrics(hostname: string, port: number, render: () => string): { port: number; stop: () => void } {
  const server = Bun.serve({
    hostname,
    port,
    fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/metrics") return new Response("not found: tslb serves /metrics only\n", { status: 404 });
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      return new Response(render(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
    },
  });
  return { port: server.port ?? port, stop: () => server.stop(true) };
}
