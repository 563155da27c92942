// tslb's own options (not ipvsadm's): role flags and daemon settings. Each daemon
// option has an environment variable TSLB_<NAME>; an auto-started daemon takes its
// settings from those (DESIGN §2). These are removed from argv before ipvsadm parsing.

export interface GlobalOptions {
  socket: string;
  tun: string;
  vipDev: string;
  connMax: number;
  foreground: boolean;
  /** Role chosen by the first argument: cli (ipvsadm), daemon, shutdown. */
  role: "cli" | "daemon" | "shutdown";
}

export const DEFAULT_SOCKET = "/run/tslb/tslb.sock";
/** Default connection-table capacity: 2^20 entries ≈ 100 MiB of shared memory. */
export const DEFAULT_CONN_MAX = 1 << 20;

/** Options that take a value, with their environment variable. */
const VALUED: Record<string, { env: string; field: "socket" | "tun" | "vipDev" | "connMax" }> = {
  "--socket": { env: "TSLB_SOCKET", field: "socket" },
  "--tun": { env: "TSLB_TUN", field: "tun" },
  "--vip-dev": { env: "TSLB_VIP_DEV", field: "vipDev" },
  "--conn-max": { env: "TSLB_CONN_MAX", field: "connMax" },
};

export class OptionError extends Error {}

/** Splits argv into tslb's own options and the rest (ipvsadm's argv, order kept). */
export function splitGlobalOptions(argv: string[], env: Record<string, string | undefined>): { opts: GlobalOptions; rest: string[] } {
  const opts: GlobalOptions = {
    socket: env.TSLB_SOCKET || DEFAULT_SOCKET,
    tun: env.TSLB_TUN || "tslb0",
    vipDev: env.TSLB_VIP_DEV || "",
    connMax: env.TSLB_CONN_MAX ? parseConnMax(env.TSLB_CONN_MAX) : DEFAULT_CONN_MAX,
    foreground: false,
    role: "cli",
  };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const spec = VALUED[name];
    if (spec) {
      const v = eq > 0 && name !== a ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new OptionError(`option ${name} needs a value`);
      if (spec.field === "connMax") opts.connMax = parseConnMax(v);
      else opts[spec.field] = v;
    } else if (a === "--foreground") {
      opts.foreground = true;
    } else if ((a === "--daemon" || a === "--shutdown") && rest.length === 0) {
      // Only as the first word: ipvsadm's own `-L --daemon` (sync daemons) stays a list option.
      opts.role = a === "--daemon" ? "daemon" : "shutdown";
    } else {
      rest.push(a);
    }
  }
  return { opts, rest };
}

function parseConnMax(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 16 || n > 1 << 26) throw new OptionError(`--conn-max must be an integer from 16 to ${1 << 26}`);
  return n;
}

/** The argv that starts a daemon with the same settings as this process. */
export function daemonArgs(o: GlobalOptions): string[] {
  const a = ["--daemon", "--foreground", "--socket", o.socket, "--tun", o.tun, "--conn-max", String(o.connMax)];
  if (o.vipDev) a.push("--vip-dev", o.vipDev);
  return a;
}
