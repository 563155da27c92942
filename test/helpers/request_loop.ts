// A bounded client loop for end-to-end tests, run inside a client namespace:
//   bun request_loop.ts http|udp ADDR PORT DURATION_MS [PAUSE_MS]
// Sends one request at a time (HTTP/1.0 on a new TCP connection, or one UDP datagram
// from a new socket) for DURATION_MS (at most 60 s), each bounded by 3 s, and prints one
// JSON line per request: {"t": start epoch ms, "ms": duration, "ok": bool, "body": text | "err": reason}.
import { connect } from "node:net";
import { createSocket } from "node:dgram";

const [mode, addr, portText, durText, pauseText] = process.argv.slice(2);
const port = Number(portText);
const duration = Math.min(Number(durText), 60_000);
const pause = Number(pauseText ?? 50);
// As patient as a real client: a SYN lost once is retransmitted after 1 s, and that request still succeeds.
const REQUEST_TIMEOUT_MS = 3000;

/** The local port of the last request that timed out (reported with it, to find its packets). */
let lastPort = 0;

function http(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: addr, port });
    let body = "";
    const t = setTimeout(() => { lastPort = s.localPort ?? 0; s.destroy(); reject(new Error("timeout")); }, REQUEST_TIMEOUT_MS);
    s.on("connect", () => s.write(`GET / HTTP/1.0\r\nHost: ${addr}\r\n\r\n`));
    s.on("data", (d) => { body += d.toString(); });
    s.on("end", () => {
      clearTimeout(t);
      const b = body.split("\r\n\r\n")[1]?.trim();
      if (b) resolve(b); else reject(new Error("empty answer"));
    });
    s.on("error", (e: NodeJS.ErrnoException) => { clearTimeout(t); reject(new Error(e.code ?? e.message)); });
  });
}

function udp(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    const t = setTimeout(() => { try { lastPort = s.address().port; } catch { /* not bound */ } s.close(); reject(new Error("timeout")); }, REQUEST_TIMEOUT_MS);
    s.on("message", (m) => { clearTimeout(t); s.close(); resolve(m.toString().trim()); });
    s.on("error", (e: NodeJS.ErrnoException) => { clearTimeout(t); s.close(); reject(new Error(e.code ?? e.message)); });
    s.connect(port, addr, () => s.send("ping"));
  });
}

const end = Date.now() + duration;
while (Date.now() < end) {
  const t = Date.now();
  lastPort = 0;
  try {
    const body = await (mode === "udp" ? udp() : http());
    console.log(JSON.stringify({ t, ms: Date.now() - t, ok: true, body }));
  } catch (e) {
    console.log(JSON.stringify({ t, ms: Date.now() - t, ok: false, err: (e as Error).message, ...(lastPort ? { port: lastPort } : {}) }));
  }
  await Bun.sleep(pause);
}
process.exit(0);
