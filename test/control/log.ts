// The daemon's log lines: one line per event, text or JSON (--log-json), newlines folded.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { makeLogger } from "../../src/control/log.ts";

const at = () => new Date(Date.UTC(2025, 0, 31, 12, 0, 0, 5));

const log = suite("makeLogger");

log("text: time, pid, event, message; a plain call is an info line", () => {
  const lines: string[] = [];
  const l = makeLogger({ json: false, write: (s) => lines.push(s), now: at });
  l.event("health", "198.18.1.12:8080 of TCP 198.18.0.100:80: up -> down", { to: "down" });
  l("enabled net.ipv4.ip_forward");
  l.event("error", "two\n  lines");
  assert.equal(lines, [
    `2025-01-31T12:00:00.005Z tslb[${process.pid}] health: 198.18.1.12:8080 of TCP 198.18.0.100:80: up -> down\n`,
    `2025-01-31T12:00:00.005Z tslb[${process.pid}] info: enabled net.ipv4.ip_forward\n`,
    `2025-01-31T12:00:00.005Z tslb[${process.pid}] error: two lines\n`,
  ]);
});

log("json: one object per line with the event's fields; errors at level error", () => {
  const lines: string[] = [];
  const l = makeLogger({ json: true, write: (s) => lines.push(s), now: at });
  l.event("rules", "cli: 1 service added", { source: "cli", commands: 1 });
  l.event("error", "cannot write");
  assert.ok(lines.every((x) => x.endsWith("\n") && !x.slice(0, -1).includes("\n")));
  assert.equal(lines.map((x) => JSON.parse(x)), [
    { time: "2025-01-31T12:00:00.005Z", level: "info", event: "rules", pid: process.pid, msg: "cli: 1 service added", source: "cli", commands: 1 },
    { time: "2025-01-31T12:00:00.005Z", level: "error", event: "error", pid: process.pid, msg: "cannot write" },
  ]);
});

log.run();
