// Commands are data. argv, -R input and the state file all become Command[] and go
// through applyAll(); the CLI never touches the daemon's state any other way.
import type { Dest, ServiceKey, ServiceSpec, Timeouts } from "./model.ts";

export type Command =
  | { kind: "add-service"; svc: ServiceSpec }
  | { kind: "edit-service"; svc: ServiceSpec }
  | { kind: "delete-service"; key: ServiceKey }
  | { kind: "clear" }
  /** dest.check of kind "none" means no check; on edit-dest an absent check keeps the current one. */
  | { kind: "add-dest"; key: ServiceKey; dest: Dest }
  | { kind: "edit-dest"; key: ServiceKey; dest: Dest }
  | { kind: "delete-dest"; key: ServiceKey; addr: string; port: number }
  | { kind: "set-timeouts"; timeouts: Timeouts };

/** What a -L/-l invocation asks to see (the options of ipvsadm's list command). */
export interface ListOptions {
  numeric: boolean;
  connections: boolean;
  timeout: boolean;
  daemon: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  tunInfo: boolean;
  exact: boolean;
  nosort: boolean;
  /** -L -t/-u/-f <service>: list one service only (no version header). */
  key?: ServiceKey;
  /** tslb's --json: the listing (or -c) as JSON for scripts. Set only when given. */
  json?: boolean;
  /** tslb's --health: each destination's health-check state. Set only when given. */
  health?: boolean;
  /** tslb's -c --fullnat-info: -c plus each full-NAT connection's local address and port. Set only when given. */
  fullnatInfo?: boolean;
  /** tslb's --laddr: full NAT's local addresses per destination and their port use. Set only when given. */
  laddr?: boolean;
}

/** --start-daemon / --stop-daemon settings (connection sync; parsed, not implemented by
 *  the data plane). 0 / "" mean "kernel default", as in ipvsadm's zeroed struct. */
export interface SyncDaemonSpec {
  state: "master" | "backup";
  /** --mcast-interface, "eth0" by default for --start-daemon, "" for --stop-daemon. */
  mcastIfn: string;
  syncId: number;
  /** --mcast-group in canonical text, "" = default. */
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
  syncMaxlen: number;
}

/** Everything one command line can ask for, after ipvsadm's parsing rules. */
export type Invocation =
  | { kind: "apply"; cmds: Command[] }
  | { kind: "list"; opts: ListOptions }
  | { kind: "save"; numeric: boolean }
  | { kind: "zero"; key?: ServiceKey }
  /** -R; dryRun = tslb's --dry-run: report what would change, apply nothing. */
  | { kind: "restore"; dryRun: boolean }
  | { kind: "start-daemon"; daemon: SyncDaemonSpec }
  | { kind: "stop-daemon"; daemon: SyncDaemonSpec }
  | { kind: "help" }
  | { kind: "version" };
