// -L --health: -L's header and order, one row per destination with its check, state, the
// time of the last change (and how long ago) and the last result; "none" when unchecked.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { ListOptions } from "../../src/control/commands.ts";
import { emptyRuleSet } from "../../src/control/model.ts";
import { ago, formatHealth } from "../../src/cli/format_health.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { listReply } from "../helpers/list_view.ts";
import { throwsIpvs } from "../helpers/ipvs_error.ts";

const O: ListOptions = {
  numeric: true, connections: false, timeout: false, daemon: false, stats: false, rate: false,
  thresholds: false, persistentConn: false, tunInfo: false, exact: false, nosort: false, health: true,
};
const NOW = Date.UTC(2025, 0, 31, 12, 1, 0);

function reply() {
  const r = emptyRuleSet();
  const dest = (addr: string) => ({ af: 4 as const, addr, port: 8080, fwd: "masq" as const, weight: 1, uThreshold: 0, lThreshold: 0, tunType: "ipip" as const, tunPort: 0, tunCsum: "nocsum" as const });
  r.services.push({
    key: { kind: "tcp", af: 4, addr: "198.18.0.100", port: 80, fwmark: 0 }, sched: "rr", schedFlags: 0, persistent: false,
    timeoutSec: 0, netmask: "255.255.255.255", pe: "", ops: false, laddrs: [], proxyProtocol: 0, dests: [dest("198.18.1.13"), dest("198.18.1.12"), dest("198.18.1.11")],
  });
  const lr = listReply(r);
  const [d13, d12] = lr.services[0].dests;
  d12.health = { check: "http", state: "down", available: false, last: { ok: false, ms: 2, detail: "HTTP 503 (want 2xx/3xx)" },
    lastCheckMs: NOW - 1000, changedMs: Date.UTC(2025, 0, 31, 12, 0, 25), transitions: 2 };
  d13.health = { check: "tcp", state: "unknown", available: true, last: null, lastCheckMs: 0, changedMs: NOW - 500, transitions: 0 };
  return lr;
}

const h = suite("formatHealth");

h("the listing", () => {
  assert.is(formatHealth(reply(), O, NO_NAMES, NOW), [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Check State   Since                    Last result",
    "TCP  198.18.0.100:80 rr",
    "  -> 198.18.1.11:8080             none  -       -                        -",
    "  -> 198.18.1.12:8080             http  down    2025-01-31T12:00:25Z 35s failed 2 ms: HTTP 503 (want 2xx/3xx)",
    "  -> 198.18.1.13:8080             tcp   unknown 2025-01-31T12:00:59Z 0s  pending",
    "",
  ].join("\n"));
});

h("one service without the version line; a missing one is ESRCH", () => {
  const key = { kind: "tcp" as const, af: 4 as const, addr: "198.18.0.100", port: 80, fwmark: 0 };
  assert.ok(formatHealth(reply(), { ...O, key }, NO_NAMES, NOW).startsWith("Prot LocalAddress:Port Scheduler Flags\n"));
  throwsIpvs(() => formatHealth(reply(), { ...O, key: { ...key, port: 81 } }, NO_NAMES, NOW), "No such service", 1);
});

h("ago", () => {
  assert.equal([0, 119_999, 120_000, 7_199_999, 7_200_000, 172_800_000].map(ago), ["0s", "119s", "2m", "119m", "2h", "2d"]);
});

h.run();
