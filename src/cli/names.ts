// Host and service names without DNS: the `files` part of glibc's NSS, which is all a
// container without a resolver has. Parsers are pure functions of the file text;
// systemNames() reads /etc/hosts and /etc/services once, on first use, and treats a
// missing file as empty. Lookups never throw; "not found" is null, and callers fall back
// to numbers exactly as ipvsadm does when gethostbyname/getservbyport fail.
import { readFileSync } from "node:fs";
import type { Af } from "../control/model.ts";
import { canonicalAddr, parseIPv4 } from "../wire/addr.ts";

export interface HostEntry { af: Af; addr: string; names: string[] }
export interface ServiceEntry { name: string; aliases: string[]; port: number; proto: string }

/** The four lookups ipvsadm makes; proto is "tcp" | "udp" | "sctp". */
export interface Names {
  /** gethostbyname, IPv4 only: the first address of the first matching line, as int32. */
  resolveHost(name: string): number | null;
  /** getservbyname(name, proto). */
  resolveService(name: string, proto: string): number | null;
  /** gethostbyaddr: the first (official) name on the first line with that address. */
  hostName(af: Af, addr: string): string | null;
  /** getservbyport(port, proto): the official name. */
  serviceName(port: number, proto: string): string | null;
}

/** What parseArgs needs from Names. */
export type ResolveEnv = Pick<Names, "resolveHost" | "resolveService">;
/** What the formatters need from Names. */
export type ReverseNames = Pick<Names, "hostName" | "serviceName">;

const words = (line: string) => line.replace(/#.*/, "").split(/[ \t\r]+/).filter((w) => w !== "");

export function parseHosts(text: string): HostEntry[] {
  const out: HostEntry[] = [];
  for (const line of text.split("\n")) {
    const [addr, ...names] = words(line);
    if (!addr || names.length === 0) continue;
    const af: Af = addr.includes(":") ? 6 : 4;
    const canon = canonicalAddr(af, addr);
    // glibc's files backend reads addresses with inet_pton, which takes only a plain
    // dotted quad, so an IPv4 address counts only if it is already canonical.
    if (canon !== null && (af === 6 || canon === addr)) out.push({ af, addr: canon, names });
  }
  return out;
}

export function parseServices(text: string): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (const line of text.split("\n")) {
    const [name, portProto, ...aliases] = words(line);
    const m = /^(\d+)\/(\w+)$/.exec(portProto ?? "");
    if (!name || !m || Number(m[1]) > 65535) continue;
    out.push({ name, aliases, port: Number(m[1]), proto: m[2] });
  }
  return out;
}

/** Names over the given /etc/hosts and /etc/services text. */
export function makeNames(hostsText: string, servicesText: string): Names {
  const hosts = parseHosts(hostsText);
  const services = parseServices(servicesText);
  return {
    resolveHost(name) {
      const lc = name.toLowerCase();
      const e = hosts.find((h) => h.af === 4 && h.names.some((n) => n.toLowerCase() === lc));
      return e ? parseIPv4(e.addr) : null;
    },
    resolveService(name, proto) {
      const e = services.find((s) => s.proto === proto && (s.name === name || s.aliases.includes(name)));
      return e ? e.port : null;
    },
    hostName(af, addr) {
      return hosts.find((h) => h.af === af && h.addr === addr)?.names[0] ?? null;
    },
    serviceName(port, proto) {
      return services.find((s) => s.proto === proto && s.port === port)?.name ?? null;
    },
  };
}

/** No names at all: every lookup fails (the -n behaviour, and a safe test default). */
export const NO_NAMES: Names = makeNames("", "");

/** The text of /etc/hosts and /etc/services (what a -R request carries to the daemon). */
export interface NameFiles { hosts: string; services: string }

/** Names over the files' text, parsed on the first lookup: most invocations make none
 *  (-n listings, numeric -R lines), and /etc/services alone took 15 ms to parse. */
export function lazyNames(files: () => NameFiles): Names {
  let names: Names | undefined;
  const get = () => {
    if (names === undefined) {
      const f = files();
      names = makeNames(f.hosts, f.services);
    }
    return names;
  };
  return {
    resolveHost: (name) => get().resolveHost(name),
    resolveService: (name, proto) => get().resolveService(name, proto),
    hostName: (af, addr) => get().hostName(af, addr),
    serviceName: (port, proto) => get().serviceName(port, proto),
  };
}

let system: Names | undefined;

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** This machine's /etc/hosts and /etc/services, read now (a missing file reads as empty). */
export function systemNameFiles(): NameFiles {
  return { hosts: readOr("/etc/hosts"), services: readOr("/etc/services") };
}

/** Names from this machine's /etc/hosts and /etc/services, read once per process, on first use. */
export function systemNames(): Names {
  system ??= lazyNames(systemNameFiles);
  return system;
}
