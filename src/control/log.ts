// The daemon's log: one line per event (start, stop, rule changes, health transitions,
// a full connection table, errors). Text for people, or JSON lines with --log-json for
// machines. It writes to stderr, synchronously so that nothing is lost at exit: in the
// foreground that is the terminal or the journal; an auto-started daemon's stderr is
// tslb.log beside its socket (control/client.ts). Never called on the data path.
import { writeSync } from "node:fs";

export type LogEvent = "start" | "stop" | "rules" | "reload" | "state" | "health" | "table_full" | "fullnat_no_port" | "metrics" | "error" | "info";

export interface Logger {
  /** An informational line (the form NetworkState, MarkDevices and the socket use). */
  (msg: string): void;
  /** One event, with optional machine-readable fields (kept in --log-json output). */
  event(event: LogEvent, msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  json: boolean;
  /** Where a finished line goes (default: fd 2). */
  write?: (line: string) => void;
  now?: () => Date;
}

/** `2025-01-31T12:00:00.000Z tslb[42] health: msg` or `{"time":...,"event":"health","msg":...}`. */
export function makeLogger(o: LoggerOptions): Logger {
  const write = o.write ?? ((line: string) => { try { writeSync(2, line); } catch { /* stderr closed: nothing to do */ } });
  const now = o.now ?? (() => new Date());
  const event = (ev: LogEvent, msg: string, fields: Record<string, unknown> = {}) => {
    const time = now().toISOString();
    const level = ev === "error" ? "error" : "info";
    // Logged text is one line whatever it contains.
    const text = msg.replace(/\s*\n\s*/g, " ");
    write(o.json
      ? JSON.stringify({ time, level, event: ev, pid: process.pid, msg: text, ...fields }) + "\n"
      : `${time} tslb[${process.pid}] ${ev}: ${text}\n`);
  };
  const log = ((msg: string) => event("info", msg)) as Logger;
  log.event = event;
  return log;
}
