// A real client for tests and the demo, run inside a client namespace:
//   bun scripts/client.ts http ADDR PORT COUNT   COUNT sequential HTTP/1.0 requests, each on a new TCP connection
//   bun scripts/client.ts udp ADDR PORT TEXT     one datagram, prints the reply
// Prints one line per answer; bounded: every request times out after 2 s.
import { connect } from "node:net";
import { createSocket } from "node:dgram";

const [mode, addr, portText, arg] = process.argv.slice(2);
const port = Number(portText);

function httpOnce(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: addr, port });
    let body = "";
    const t = setTimeout(() => { s.destroy(); reject(new Error("timeout")); }, 2000);
    s.on("connect", () => s.write(`GET / HTTP/1.0\r\nHost: ${addr}\r\n\r\n`));
    s.on("data", (d) => { body += d.toString(); });
    s.on("end", () => { clearTimeout(t); resolve(body.split("\r\n\r\n")[1]?.trim() ?? ""); });
    s.on("error", (e) => { clearTimeout(t); reject(e); });
  });
}

if (mode === "http") {
  for (let i = 0; i < Number(arg ?? 1); i++) {
    try { console.log(await httpOnce()); } catch (e) { console.log(`error ${(e as Error).message}`); }
  }
} else if (mode === "udp") {
  const s = createSocket("udp4");
  const t = setTimeout(() => { console.log("error timeout"); process.exit(1); }, 2000);
  s.on("message", (m) => { clearTimeout(t); console.log(m.toString()); s.close(); });
  s.send(arg ?? "ping", port, addr);
} else {
  console.error("usage: client.ts http|udp ADDR PORT COUNT|TEXT");
  process.exit(2);
}
