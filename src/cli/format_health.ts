// `-L --health` (tslb only): each destination's health-check state, the last probe's
// result and when the state last changed, laid out like -L (same header, same order,
// same addr:port column). Pure; `nowMs` makes the "ago" column testable.
//
//   IP Virtual Server version 1.2.1 (size=4096)
//   Prot LocalAddress:Port Scheduler Flags
//     -> RemoteAddress:Port           Check State   Since                    Last result
//   TCP  198.18.0.100:80 rr
//     -> 198.18.1.11:8080             tcp   up      2025-01-31T12:00:00Z 35s ok 1 ms: connected
//     -> 198.18.1.12:8080             none  -       -                        -
import type { ListOptions } from "../control/commands.ts";
import { IpvsError, MSG } from "../control/errors.ts";
import { sameServiceKey } from "../control/model.ts";
import type { DestView, ListReply, ServiceView } from "../control/protocol.ts";
import type { ReverseNames } from "./names.ts";
import { addrPortName, sortDests, sortServices, protoName, schedFlagNames } from "./rules_text.ts";

const left = (s: string | number, w: number) => String(s).padEnd(w);
const PROTO_TITLE: Readonly<Record<string, string>> = { tcp: "TCP", udp: "UDP", sctp: "SCTP" };

export const HEALTH_TITLE = "Prot LocalAddress:Port Scheduler Flags\n" +
  `  -> ${left("RemoteAddress:Port", 28)} ${left("Check", 5)} ${left("State", 7)} ${left("Since", 24)} Last result\n`;

/** "35s", "12m", "3h", "2d": how long ago, coarsely. */
export function ago(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function destRow(d: DestView, proto: string, o: ListOptions, names: ReverseNames, nowMs: number): string {
  let dname = addrPortName(d.af, d.addr, d.port, proto, o.numeric, names);
  if (d.af !== 6) dname = dname.slice(0, 28);
  const h = d.health;
  if (!h) return `  -> ${left(dname, 28)} ${left("none", 5)} ${left("-", 7)} ${left("-", 24)} -\n`;
  const since = `${new Date(h.changedMs).toISOString().slice(0, 19)}Z ${ago(nowMs - h.changedMs)}`;
  const last = h.last ? `${h.last.ok ? "ok" : "failed"} ${h.last.ms} ms: ${h.last.detail}` : "pending";
  return `  -> ${left(dname, 28)} ${left(h.check, 5)} ${left(h.state, 7)} ${left(since, 24)} ${last}\n`;
}

function serviceRow(s: ServiceView, o: ListOptions, names: ReverseNames): string {
  const k = s.key;
  let out = k.kind === "fwm"
    ? `FWM  ${k.fwmark}${k.af === 6 ? " IPv6" : ""}`
    : `${left(PROTO_TITLE[k.kind], 4)} ${addrPortName(k.af, k.addr, k.port, protoName(k.kind), o.numeric, names)}`;
  out += ` ${s.sched}`;
  if (s.schedFlags & 7) out += ` (${schedFlagNames(s.sched, s.schedFlags).join(",")})`;
  return out + "\n";
}

/** The --health listing (one service with -t/-u/-f, without the version line, as -L). */
export function formatHealth(reply: ListReply, o: ListOptions, names: ReverseNames, nowMs = Date.now()): string {
  let services = o.nosort ? reply.services : sortServices(reply.services);
  let out = HEALTH_TITLE;
  if (o.key) {
    const key = o.key;
    services = services.filter((s) => sameServiceKey(s.key, key));
    if (services.length === 0) throw new IpvsError("ESRCH", MSG.NO_SUCH_SERVICE, 1);
  } else out = `IP Virtual Server version 1.2.1 (size=${reply.size})\n` + out;
  for (const s of services) {
    out += serviceRow(s, o, names);
    const proto = protoName(s.key.kind);
    for (const d of o.nosort ? s.dests : sortDests(s.dests)) out += destRow(d, proto, o, names, nowMs);
  }
  return out;
}
