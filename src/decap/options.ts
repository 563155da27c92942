// Options of the decapsulation role: `tslb --decap [--foreground] [--vip ADDR[,ADDR...]]
// [--gue-port N[,N...]] [--tun NAME] [--log FILE] [--pid-file FILE]`. Each has an
// environment variable TSLB_DECAP_<NAME>; a command-line value wins. Pure: no I/O.
import { parseIPv4Strict, parseIPv6 } from "../wire/addr.ts";

export interface DecapOptions {
  foreground: boolean;
  /** VIPs given with --vip; both empty = every address configured on `lo`, followed live. */
  vip4: number[];
  vip6: number[][];
  /** The VIPs as written, for messages. */
  vipText: string[];
  guePorts: number[];
  tun: string;
  /** Where a detached decap writes its output (counters on SIGUSR1, errors). */
  log: string;
  pidFile: string;
}

export class DecapOptionError extends Error {}

export const DECAP_USAGE = `Usage: tslb --decap [--foreground] [--vip ADDR[,ADDR...]] [--gue-port N[,N...]] [--tun NAME]
                    [--log FILE] [--pid-file FILE]
  Real-server side of tunnel mode (-i) for hosts without the ipip/sit/gre/fou modules:
  takes IPIP (4), IPv6-in-IP (41) and GRE (47) packets, and GUE on the given UDP ports,
  and injects each inner packet addressed to a VIP through a local TUN.
  --foreground      stay attached (containers, systemd); otherwise run in the background
  --vip LIST        inner destinations accepted (default: every address on lo, followed live)
  --gue-port LIST   UDP ports to take GUE on (default: none)
  --tun NAME        TUN device for the inner packets (default tslbdecap0)
  --log FILE        background output (default /run/tslb/decap.log)
  --pid-file FILE   background pid (default /run/tslb/decap.pid)
  Counters are printed on SIGUSR1 and at exit (SIGTERM, SIGINT).
  Environment: TSLB_DECAP_VIP, TSLB_DECAP_GUE_PORT, TSLB_DECAP_TUN, TSLB_DECAP_LOG, TSLB_DECAP_PID_FILE.
`;

const VALUED: Record<string, string> = {
  "--vip": "TSLB_DECAP_VIP",
  "--gue-port": "TSLB_DECAP_GUE_PORT",
  "--tun": "TSLB_DECAP_TUN",
  "--log": "TSLB_DECAP_LOG",
  "--pid-file": "TSLB_DECAP_PID_FILE",
};

/** Parses the words after `--decap`. Throws DecapOptionError with a one-line reason. */
export function parseDecapOptions(argv: readonly string[], env: Record<string, string | undefined>): DecapOptions {
  const o: DecapOptions = {
    foreground: false, vip4: [], vip6: [], vipText: [], guePorts: [],
    tun: "tslbdecap0", log: "/run/tslb/decap.log", pidFile: "/run/tslb/decap.pid",
  };
  const given = new Map<string, string[]>();
  for (const [name, ev] of Object.entries(VALUED)) {
    const v = env[ev];
    if (v) given.set(name, [v]);
  }
  const fromArgv = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--foreground") { o.foreground = true; continue; }
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (!(name in VALUED)) throw new DecapOptionError(`unknown option ${a} for --decap`);
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) throw new DecapOptionError(`option ${name} needs a value`);
    // The command line replaces the environment's value; repeating an option adds to it.
    if (!fromArgv.has(name)) { given.set(name, []); fromArgv.add(name); }
    given.get(name)!.push(v);
  }
  for (const text of (given.get("--vip") ?? []).flatMap(list)) {
    const v4 = parseIPv4Strict(text);
    if (v4 !== null) o.vip4.push(v4);
    else {
      const v6 = parseIPv6(text);
      if (v6 === null) throw new DecapOptionError(`--vip: ${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
      o.vip6.push(v6);
    }
    o.vipText.push(text);
  }
  for (const text of (given.get("--gue-port") ?? []).flatMap(list)) {
    const n = Number(text);
    if (!/^[0-9]+$/.test(text) || n < 1 || n > 65535) throw new DecapOptionError(`--gue-port: ${JSON.stringify(text)} is not a port (1-65535)`);
    if (!o.guePorts.includes(n)) o.guePorts.push(n);
  }
  const last = (name: string) => given.get(name)?.at(-1);
  o.tun = last("--tun") ?? o.tun;
  if (o.tun.length === 0 || new TextEncoder().encode(o.tun).length > 15) throw new DecapOptionError(`--tun: ${JSON.stringify(o.tun)} must be 1-15 bytes`);
  o.log = last("--log") ?? o.log;
  o.pidFile = last("--pid-file") ?? o.pidFile;
  return o;
}

function list(v: string): string[] {
  return v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The argv (after the program) that runs a foreground decap with these options. */
export function decapArgs(o: DecapOptions): string[] {
  const a = ["--decap", "--foreground", "--tun", o.tun, "--log", o.log, "--pid-file", o.pidFile];
  if (o.vipText.length > 0) a.push("--vip", o.vipText.join(","));
  if (o.guePorts.length > 0) a.push("--gue-port", o.guePorts.join(","));
  return a;
}
