// The tcp, http and udp checkers against real sockets, inside a namespace of their own
// (test/helpers/in_netns.ts): what passes, what fails and why, the timeout, abort, and
// the fixed local port of --check-via-vip probes. Servers and probes use 127.0.0.1 and
// 198.18.250.0/24 on a veth whose far end is mute (a silent host).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import type { CheckTarget } from "../../src/health/checker.ts";
import { httpChecker, parseStatusLine, statusPasses } from "../../src/health/http.ts";
import { tcpChecker } from "../../src/health/tcp.ts";
import { UDP_PROBE, udpChecker } from "../../src/health/udp.ts";
import { inNetns } from "../helpers/in_netns.ts";

const ns = await inNetns(import.meta.path, "health");
const ip = (...a: string[]) => spawnSync("ip", ["-n", ns, ...a], { encoding: "utf8" });
// A veth pair whose far end has no address: 198.18.250.2 is on-link and never answers ARP.
ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
ip("addr", "add", "198.18.250.1/24", "dev", "v0");
ip("link", "set", "v0", "up");
ip("link", "set", "v1", "up");
const SILENT = "198.18.250.2";

const target = (port: number, o: Partial<CheckTarget> = {}): CheckTarget =>
  ({ af: 4, addr: "127.0.0.1", port, path: "/", status: 0, localPort: 0, ...o });
const never = new AbortController().signal;

/** A TCP server on 127.0.0.1 that runs `onConn` per connection; resolves with its port. */
function tcpServer(onConn: (s: import("node:net").Socket) => void): Promise<{ port: number; server: Server }> {
  return new Promise((resolve) => {
    const server = createServer(onConn);
    server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as { port: number }).port, server }));
  });
}
/** A closed port: bound then released. */
async function closedPort(): Promise<number> {
  const { port, server } = await tcpServer(() => {});
  await new Promise((r) => server.close(r));
  return port;
}

// ---
const tcp = suite("tcp checker");

tcp("a listening port passes; the probe sends nothing and closes", async () => {
  let got = -1;
  const { port, server } = await tcpServer((s) => { got = 0; s.on("data", (d) => { got += d.length; }); });
  const r = await tcpChecker.check(target(port), 500, never);
  assert.equal([r.ok, r.detail], [true, "connected"]);
  assert.ok(r.ms < 200, `${r.ms} ms`);
  await Bun.sleep(50);
  assert.is(got, 0);
  server.close();
});

tcp("a closed port fails at once with ECONNREFUSED", async () => {
  const r = await tcpChecker.check(target(await closedPort()), 500, never);
  assert.equal([r.ok, r.detail], [false, "ECONNREFUSED"]);
  assert.ok(r.ms < 200);
});

tcp("a silent host fails at the timeout", async () => {
  const t0 = performance.now();
  const r = await tcpChecker.check(target(80, { addr: SILENT }), 300, never);
  assert.equal([r.ok, r.detail], [false, "timeout after 300 ms"]);
  const ms = performance.now() - t0;
  assert.ok(ms >= 290 && ms < 800, `${ms} ms`);
});

tcp("abort ends a probe early as a failure", async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const r = await tcpChecker.check(target(80, { addr: SILENT }), 5000, ac.signal);
  assert.equal([r.ok, r.detail], [false, "aborted"]);
  assert.ok(r.ms < 500);
  const pre = new AbortController();
  pre.abort();
  assert.equal((await tcpChecker.check(target(80), 5000, pre.signal)).detail, "aborted");
});

tcp("a fixed local port (--check-via-vip) is used, again and again", async () => {
  const seen: number[] = [];
  const { port, server } = await tcpServer((s) => { seen.push(s.remotePort!); });
  for (let i = 0; i < 3; i++) assert.is((await tcpChecker.check(target(port, { localPort: 29177 }), 500, never)).ok, true);
  await Bun.sleep(50);
  assert.equal(seen, [29177, 29177, 29177]);
  server.close();
});

tcp.run();

// ---
const http = suite("http checker");

/** An HTTP server answering `status` and recording the request heads. */
function httpServer(status: number, heads: string[]) {
  return Bun.serve({
    hostname: "127.0.0.1", port: 0,
    fetch(req) {
      heads.push(`${req.method} ${new URL(req.url).pathname} host=${req.headers.get("host")}`);
      return new Response("x", { status, headers: status >= 300 && status < 400 ? { location: "/" } : {} });
    },
  });
}

http("2xx and 3xx pass by default; 4xx and 5xx fail with the status in the detail", async () => {
  for (const [status, ok] of [[200, true], [204, true], [302, true], [404, false], [503, false]] as const) {
    const heads: string[] = [];
    const s = httpServer(status, heads);
    const r = await httpChecker.check(target(s.port!, { path: "/healthz" }), 1000, never);
    assert.is(r.ok, ok, `${status}`);
    assert.is(r.detail, ok ? `HTTP ${status}` : `HTTP ${status} (want 2xx/3xx)`);
    assert.equal(heads, [`GET /healthz host=127.0.0.1:${s.port}`]);
    s.stop(true);
  }
});

http("--check-status wants that status exactly", async () => {
  const s = httpServer(200, []);
  assert.equal((await httpChecker.check(target(s.port!, { status: 200 }), 1000, never)).ok, true);
  const r = await httpChecker.check(target(s.port!, { status: 204 }), 1000, never);
  assert.equal([r.ok, r.detail], [false, "HTTP 200 (want 204)"]);
  s.stop(true);
});

http("not HTTP, no answer, a closed port, a silent host", async () => {
  const junk = await tcpServer((c) => c.end("SSH-2.0-OpenSSH\r\n"));
  assert.equal((await httpChecker.check(target(junk.port), 500, never)).detail, "not an HTTP answer");
  junk.server.close();
  const mute = await tcpServer((c) => c.end());
  assert.equal((await httpChecker.check(target(mute.port), 500, never)).detail, "closed without an answer");
  mute.server.close();
  const hang = await tcpServer(() => {});
  assert.equal((await httpChecker.check(target(hang.port), 300, never)).detail, "timeout after 300 ms");
  hang.server.close();
  assert.equal((await httpChecker.check(target(await closedPort()), 500, never)).detail, "ECONNREFUSED");
});

http("status lines", () => {
  assert.is(parseStatusLine("HTTP/1.1 200 OK"), 200);
  assert.is(parseStatusLine("HTTP/1.0 503 Service Unavailable"), 503);
  assert.is(parseStatusLine("HTTP/2 204"), 204);
  assert.is(parseStatusLine("HTTP/1.1 20 OK"), -1);
  assert.is(parseStatusLine("SSH-2.0"), -1);
  assert.ok(statusPasses(399, 0) && !statusPasses(400, 0) && !statusPasses(199, 0) && statusPasses(418, 418));
});

http.run();

// ---
const udp = suite("udp checker");

udp("a reply passes at once; the probe datagram is UDP_PROBE", async () => {
  const got: string[] = [];
  const s = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: { data(sock, buf, port, addr) { got.push(buf.toString()); sock.send("pong", port, addr); } },
  });
  const r = await udpChecker.check(target(s.port), 1000, never);
  assert.equal([r.ok, r.detail], [true, "reply"]);
  assert.ok(r.ms < 200);
  assert.equal(got, [UDP_PROBE]);
  s.close();
});

udp("ICMP port unreachable fails with ECONNREFUSED", async () => {
  const s = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const port = s.port;
  s.close();
  const r = await udpChecker.check(target(port), 1000, never);
  assert.equal([r.ok, r.detail], [false, "ECONNREFUSED"]);
  assert.ok(r.ms < 300);
});

udp("silence until the timeout passes (a server that does not answer this datagram)", async () => {
  const s = await Bun.udpSocket({ hostname: "127.0.0.1", socket: { data() {} } });
  const r = await udpChecker.check(target(s.port), 300, never);
  assert.equal([r.ok, r.detail], [true, "no reply, no ICMP error"]);
  assert.ok(r.ms >= 290, `${r.ms} ms`);
  s.close();
});

udp.run();
