// Firewall-mark services (-f MARK). The kernel does not tell a TUN reader a packet's mark,
// so each mark gets a TUN of its own: the user marks packets (e.g. with nftables), the
// policy rule `fwmark MARK lookup <table>` sends them to that table, whose default route
// is the mark's TUN, and the data plane knows the mark from the device it read the
// packet on. This class opens, routes and closes those devices; the worker only reads
// them (it writes every packet to the main TUN).
import type { RtNetlink } from "../io/rtnetlink.ts";
import { SysError } from "../io/libc.ts";
import { openTun, type TunDevice } from "../io/tun.ts";
import { TSLB_TABLE } from "./network.ts";
import type { RuleSet } from "./model.ts";

/** Rule priority of the fwmark rules: after the TUN exemption and the reply rules. */
export const PRIO_FWMARK = 29002;
const EEXIST = 17;

export interface MarkDevice {
  mark: number;
  name: string;
  fd: number;
}

interface Open {
  tun: TunDevice;
  table: number;
  afs: Set<4 | 6>;
}

export class MarkDevices {
  private readonly open = new Map<number, Open>();
  private stale: Open[] = [];
  private nextTable = TSLB_TABLE + 1;

  constructor(private readonly nl: RtNetlink, private readonly log: (m: string) => void) {}

  /** The marks the rules use, with the address families of their services. */
  static wanted(rules: RuleSet): Map<number, Set<4 | 6>> {
    const m = new Map<number, Set<4 | 6>>();
    for (const s of rules.services) {
      if (s.key.kind !== "fwm") continue;
      const afs = m.get(s.key.fwmark) ?? new Set<4 | 6>();
      afs.add(s.key.af);
      m.set(s.key.fwmark, afs);
    }
    return m;
  }

  /**
   * Opens and routes a TUN for every new mark; marks no longer wanted lose their rule
   * and route now and their device after the worker stops using it (closeStale).
   */
  sync(want: Map<number, Set<4 | 6>>): void {
    for (const [mark, o] of this.open) {
      if (want.has(mark)) continue;
      this.unroute(mark, o);
      this.open.delete(mark);
      this.stale.push(o);
    }
    for (const [mark, afs] of want) {
      let o = this.open.get(mark);
      if (!o) {
        const tun = openTun(`tslbm${(mark >>> 0).toString(16)}`);
        o = { tun, table: this.nextTable++, afs: new Set() };
        this.open.set(mark, o);
        const idx = this.nl.linkIndex(tun.name);
        this.nl.linkSetUp(idx);
      }
      for (const af of afs) {
        if (o.afs.has(af)) continue;
        const idx = this.nl.linkIndex(o.tun.name);
        this.ignoreExists(() => this.nl.routeAdd({ af, dst: af === 4 ? "0.0.0.0" : "::", prefixLen: 0, oif: idx, table: o!.table }));
        this.ignoreExists(() => this.nl.ruleAdd({ af, priority: PRIO_FWMARK, table: o!.table, fwmark: mark }));
        o.afs.add(af);
      }
    }
  }

  devices(): MarkDevice[] {
    return [...this.open].map(([mark, o]) => ({ mark, name: o.tun.name, fd: o.tun.fd }));
  }

  /** Closes devices of removed marks; call once the worker runs without them. */
  closeStale(): void {
    for (const o of this.stale) o.tun.close();
    this.stale = [];
  }

  teardown(): void {
    for (const [mark, o] of this.open) {
      try { this.unroute(mark, o); } catch (e) { this.log(`teardown: ${(e as Error).message}`); }
      this.stale.push(o);
    }
    this.open.clear();
    this.closeStale();
  }

  private unroute(mark: number, o: Open): void {
    for (const af of o.afs) this.nl.ruleDel({ af, priority: PRIO_FWMARK, table: o.table, fwmark: mark });
    // The table's route goes with the device when it closes.
  }

  private ignoreExists(f: () => void): void {
    try { f(); } catch (e) { if (!(e instanceof SysError && e.errno === EEXIST)) throw e; }
  }
}
