// applyAll: the IPVS "kernel" side of a command batch, as a pure function. It returns a
// new RuleSet or throws the IpvsError ipvsadm would print for the first command the
// kernel refuses (reference §1.7, exit 255); the input RuleSet is never modified, so a
// failed batch leaves the running rules untouched (tslb's -R is all-or-nothing).
// Checks run in the kernel's order: service lookup, family, ranges, then the dest itself.
// What ipvsadm accepts but tslb's data plane cannot forward yet (SCTP services, the sip
// persistence engine) and tslb's own --proxy-protocol are refused here with tslb's own
// EOPNOTSUPP message, so that no service is ever accepted that would silently drop its
// traffic.
import type { Command } from "./commands.ts";
import { IpvsError, MSG, opError } from "./errors.ts";
import { type Af, type Dest, type RuleSet, type Service, type ServiceKey, type ServiceSpec, serviceKeyText } from "./model.ts";
import { parseIPv4, parseIPv6 } from "../wire/addr.ts";
import { dottedQuad } from "./dotted_quad.ts";

export function applyAll(rules: RuleSet, cmds: readonly Command[], schedulers: readonly string[]): RuleSet {
  const batch = new RuleBatch(rules, schedulers);
  for (const cmd of cmds) batch.apply(cmd);
  return batch.rules;
}

/**
 * applyAll whose result shares the services the commands leave alone with `rules` (see
 * RuleBatch's `share`): the daemon's rules are never changed in place, and copying 100 000
 * destinations for one `-a` took a third of a second. The input is still never modified.
 */
export function applyShared(rules: RuleSet, cmds: readonly Command[], schedulers: readonly string[]): RuleSet {
  const batch = new RuleBatch(rules, schedulers, true);
  for (const cmd of cmds) batch.apply(cmd);
  return batch.rules;
}

/**
 * Services by key text, kept in step with `rules.services` while a batch applies: a
 * restore of 10 000 services looks each one up 11 times, which a linear search made
 * quadratic (22 s for 10 000 × 10).
 */
type ServiceIndex = Map<string, Service>;

function indexServices(rules: RuleSet): ServiceIndex {
  return new Map(rules.services.map((s) => [serviceKeyText(s.key), s]));
}

/**
 * Commands applied one at a time to a copy of a RuleSet (the input is never modified):
 * for callers that parse as they go and must name the command that fails. With `share`,
 * the copy is made as the commands go: a service is copied (its settings and its list of
 * destinations, not the destinations) before the first command that changes it, and the
 * result shares every other service with the input. Both must then be treated as
 * read-only, as the daemon treats its rules.
 */
export class RuleBatch {
  readonly rules: RuleSet;
  private readonly st: BatchState;
  constructor(rules: RuleSet, schedulers: readonly string[], share = false) {
    this.rules = share ? { services: rules.services.slice(), timeouts: { ...rules.timeouts } } : structuredClone(rules);
    this.st = {
      rules: this.rules, index: indexServices(this.rules), schedulers, lastKey: null, lastSvc: undefined,
      shared: share ? new Set(rules.services) : null, at: null,
    };
  }

  /**
   * Applies one command or throws its IpvsError (the batch is then not to be used).
   * `owned`: the command's objects are the caller's to give away (made for this call and
   * never used again), so the rules take them as they are instead of copies.
   */
  apply(cmd: Command, owned = false): void {
    applyOne(this.st, cmd, owned);
  }
}

/** A batch's working state. */
interface BatchState {
  rules: RuleSet;
  index: ServiceIndex;
  schedulers: readonly string[];
  /**
   * The service the last lookup found, by its key: a restore names one service on many
   * lines in a row, and building its key text for each was a fifth of applying them.
   */
  lastKey: ServiceKey | null;
  lastSvc: Service | undefined;
  /** With sharing: the services still the input's (copied before they change); else null. */
  shared: Set<Service> | null;
  /** Where each service is in rules.services, built when first needed (null: to build). */
  at: Map<Service, number> | null;
}

/** The service to change: itself, or with sharing its own copy in place of the input's. */
function own(st: BatchState, svc: Service): Service {
  if (st.shared === null || !st.shared.has(svc)) return svc;
  st.shared.delete(svc);
  const copy: Service = { ...svc, dests: svc.dests.slice() };
  if (st.at === null) st.at = new Map(st.rules.services.map((s, i) => [s, i]));
  st.rules.services[st.at.get(svc)!] = copy;
  st.at.set(copy, st.at.get(svc)!);
  st.index.set(serviceKeyText(svc.key), copy);
  if (st.lastSvc === svc) st.lastSvc = copy;
  return copy;
}

/**
 * applyAll over -R input, one batch of Commands per input line, in order. The batches may
 * come from a generator that parses lazily, so a line that does not parse and a line the
 * "kernel" refuses are reported in input order. The first failing batch throws its
 * IpvsError with `line` set to that batch's line (an error that already has a line keeps
 * it); the input RuleSet is never modified.
 */
export function applyLines(
  rules: RuleSet, lines: Iterable<{ line: number; cmds: readonly Command[] }>, schedulers: readonly string[],
): RuleSet {
  const batch = new RuleBatch(rules, schedulers);
  for (const { line, cmds } of lines) {
    try {
      for (const cmd of cmds) batch.apply(cmd);
    } catch (e) {
      if (e instanceof IpvsError && e.line === undefined) e.line = line;
      throw e;
    }
  }
  return batch.rules;
}

/** tslb-only refusals: accepted by ipvsadm, not forwarded by tslb's data plane yet. */
const SCTP_UNSUPPORTED = "SCTP services are not supported by tslb's data plane yet";
const PE_UNSUPPORTED = (pe: string) => `persistence engine '${pe}' is not supported by tslb yet`;
const CHECK_VIA_VIP_FWM = "--check-via-vip needs a virtual address: a firewall-mark service has none";
const CHECK_VIA_VIP_NAT = "--check-via-vip is for direct-routing and tunnel servers only (give the check again, without it)";
const PROXY_PROTOCOL_UDP = "--proxy-protocol v1 has no UDP form: use v2 for UDP services";
const PROXY_PROTOCOL_FWD = "--proxy-protocol needs NAT (-m) or full-NAT (--fullnat) real servers: tslb never sees the replies of -g and -i servers";
/** Persistence engines IPVS has (ipvsadm's PE_LIST); any other name is ENOENT. */
const KNOWN_PES: readonly string[] = ["sip"];

// Plain copies of the command's objects (a RuleSet never shares them with a Command);
// structuredClone cost ~2 µs each, a third of a 100 000-line restore.
function copySpec(s: ServiceSpec): ServiceSpec {
  return { ...s, key: { ...s.key }, laddrs: [...s.laddrs] };
}
function copyDest(d: Dest): Dest {
  return d.check ? { ...d, check: { ...d.check } } : { ...d };
}

function findService(st: BatchState, key: ServiceKey): Service | undefined {
  const k = st.lastKey;
  if (k !== null && k.port === key.port && k.addr === key.addr && k.kind === key.kind && k.af === key.af && k.fwmark === key.fwmark) return st.lastSvc;
  const svc = st.index.get(serviceKeyText(key));
  if (svc !== undefined) { st.lastKey = svc.key; st.lastSvc = svc; }
  return svc;
}


function findDestIndex(svc: Service, d: { addr: string; port: number }): number {
  const dests = svc.dests;
  for (let i = 0; i < dests.length; i++) if (dests[i].port === d.port && dests[i].addr === d.addr) return i;
  return -1;
}

/** IPVS takes only unicast real servers: not 0/8, multicast or broadcast for IPv4; not
 *  ::, multicast or link-local for IPv6 (the kernel answers EINVAL). tslb asks the same
 *  of a service's --laddr addresses. */
function unicastDest(d: { af: Af; addr: string }): boolean {
  if (d.af === 4) {
    // Canonical text (what the parsers make) read directly: inet_aton's general parser
    // was a tenth of applying a restore.
    const a = dottedQuad(d.addr) ?? parseIPv4(d.addr) ?? 0;
    return (a >>> 24) !== 0 && (a >>> 28) !== 0xe && a !== -1;
  }
  const w = parseIPv6(d.addr) ?? [0, 0, 0, 0];
  const top = w[0] >>> 16;
  const unspecified = w.every((x) => x === 0);
  return !unspecified && (top >>> 8) !== 0xff && (top & 0xffc0) !== 0xfe80;
}

/**
 * tslb-only refusal, to be removed when the data plane sends PROXY protocol headers: a
 * service with --proxy-protocol parses and saves, but is not accepted.
 */
/**
 * --proxy-protocol shifts sequence numbers both ways, so every real server of the service
 * must be one whose replies pass through tslb; v1 is text for TCP streams only.
 */
function checkProxyProtocol(svc: ServiceSpec, dests: readonly Dest[]): void {
  if (svc.proxyProtocol === 0) return;
  if (svc.key.kind === "udp" && svc.proxyProtocol === 1) throw opError("EINVAL", PROXY_PROTOCOL_UDP);
  if (dests.some((d) => d.fwd !== "masq" && d.fwd !== "fullnat")) throw opError("EINVAL", PROXY_PROTOCOL_FWD);
}

function applyOne(st: BatchState, cmd: Command, owned: boolean) {
  const { rules, index, schedulers } = st;
  switch (cmd.kind) {
    case "clear":
      rules.services = [];
      index.clear();
      st.lastKey = null;
      st.at = null;
      return;
    case "set-timeouts": {
      const t = cmd.timeouts;
      if (t.tcp) rules.timeouts.tcp = t.tcp;
      if (t.tcpfin) rules.timeouts.tcpfin = t.tcpfin;
      if (t.udp) rules.timeouts.udp = t.udp;
      return;
    }
    case "add-service":
    case "edit-service": {
      // Before the lookup: an SCTP service can never exist, so say why rather than ESRCH.
      if (cmd.svc.key.kind === "sctp") throw opError("EOPNOTSUPP", SCTP_UNSUPPORTED);
      const old = findService(st, cmd.svc.key);
      if (cmd.kind === "add-service" && old) throw opError("EEXIST", MSG.SVC_EXISTS);
      if (cmd.kind === "edit-service" && !old) throw opError("ESRCH", MSG.NO_SUCH_SERVICE);
      // The kernel looks the scheduler up first, then the persistence engine.
      const pe = cmd.svc.pe;
      if (!schedulers.includes(cmd.svc.sched) || (pe !== "" && !KNOWN_PES.includes(pe))) {
        throw opError("ENOENT", MSG.SCHED_NOT_FOUND);
      }
      if (pe !== "") throw opError("EOPNOTSUPP", PE_UNSUPPORTED(pe)); // no engine is built yet
      if (cmd.svc.laddrs.some((addr) => !unicastDest({ af: cmd.svc.key.af, addr }))) throw opError("EINVAL", MSG.EINVAL);
      checkProxyProtocol(cmd.svc, old?.dests ?? []);
      const spec = owned ? cmd.svc : copySpec(cmd.svc);
      if (old) Object.assign(own(st, old), spec); // edit replaces every setting, keeps the dests
      else {
        const svc: Service = { ...spec, dests: [] };
        rules.services.push(svc);
        index.set(serviceKeyText(svc.key), svc);
      }
      return;
    }
    case "delete-service": {
      const svc = findService(st, cmd.key);
      if (!svc) throw opError("ESRCH", MSG.NO_SUCH_SERVICE);
      rules.services.splice(rules.services.indexOf(svc), 1);
      index.delete(serviceKeyText(cmd.key));
      st.lastKey = null;
      st.at = null; // positions moved
      return;
    }
    case "add-dest":
    case "edit-dest": {
      const found = findService(st, cmd.key);
      if (!found) throw opError("ESRCH", MSG.SVC_NOT_DEFINED);
      const svc = own(st, found);
      const d = cmd.dest;
      // Another family: a tunnel's outer header, or full NAT translating (NAT46/NAT64).
      if (d.af !== svc.key.af && d.fwd !== "tunnel" && d.fwd !== "fullnat") throw opError("EINVAL", MSG.EINVAL);
      if (d.weight < 0 || d.lThreshold > d.uThreshold) throw opError("ERANGE", MSG.ERANGE);
      const i = findDestIndex(svc, d);
      const nd = owned ? d : copyDest(d);
      // tslb's health check: `--check none` removes it; an edit without --check keeps it.
      if (nd.check?.kind === "none") delete nd.check;
      else if (cmd.kind === "edit-dest" && !d.check && i >= 0 && svc.dests[i].check) nd.check = { ...svc.dests[i].check! };
      if (nd.check?.viaVip && (nd.fwd === "masq" || nd.fwd === "fullnat")) throw opError("EINVAL", CHECK_VIA_VIP_NAT);
      if (nd.check?.viaVip && svc.key.kind === "fwm") throw opError("EINVAL", CHECK_VIA_VIP_FWM);
      if (svc.proxyProtocol !== 0) checkProxyProtocol(svc, [nd]);
      if (cmd.kind === "add-dest") {
        if (i >= 0) throw opError("EEXIST", MSG.DEST_EXISTS);
        if (!unicastDest(d)) throw opError("EINVAL", MSG.EINVAL);
        svc.dests.unshift(nd); // IPVS lists the newest destination first
      } else {
        if (i < 0) throw opError("ENOENT", MSG.NO_SUCH_DEST);
        svc.dests[i] = nd; // edit keeps the list position
      }
      return;
    }
    case "delete-dest": {
      const found = findService(st, cmd.key);
      if (!found) throw opError("ESRCH", MSG.SVC_NOT_DEFINED);
      const svc = own(st, found);
      const i = findDestIndex(svc, cmd);
      if (i < 0) throw opError("ENOENT", MSG.NO_SUCH_DEST);
      svc.dests.splice(i, 1);
      return;
    }
    default: {
      const never: never = cmd;
      throw new Error(`applyAll: unknown command ${JSON.stringify(never)}`);
    }
  }
}
