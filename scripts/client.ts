// A real client for tests and the demo, run inside a client namespace:
//   bun scripts/client.ts http ADDR PORT COUNT   COUNT sequential HTTP/1.0 requests, each on a new TCP connection
//   bun scripts/client.ts udp ADDR PORT TEXT     one datagram, prints the reply
//   bun scripts/client.ts udpburst ADDR PORT N   N datagrams "b<i>" back to back on one socket; prints
//                                                "<replies> <distinct well-formed replies>" after 2 s of quiet
//   bun scripts/client.ts keepalive ADDR PORT    one TCP connection; a GET (HTTP/1.1 keep-alive) per stdin line
//   bun scripts/client.ts upload ADDR PORT BYTES  one POST of BYTES bytes
//   bun scripts/client.ts download ADDR PORT PATH one GET of PATH; prints the status code, body bytes and a checksum
//   bun scripts/client.ts put ADDR PORT BYTES      one PUT /up/upload.bin of BYTES patterned bytes; prints the status code
// Prints one line per answer; bounded: every request times out after 2 s.
import { connect } from "node:net";
import { createSocket } from "node:dgram";

const [mode, addr, portText, arg] = process.argv.slice(2);
const port = Number(portText);

function httpOnce(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: addr, port });
    let body = "";
    const t = setTimeout(() => { s.destroy(); reject(new Error("timeout")); }, Number(process.env.TSLB_CLIENT_TIMEOUT_MS ?? 2000));
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
  // Connected, so that an ICMP error (port unreachable) surfaces as ECONNREFUSED.
  const s = createSocket(addr.includes(":") ? "udp6" : "udp4");
  const t = setTimeout(() => { console.log("error timeout"); process.exit(1); }, 2000);
  s.on("message", (m) => { clearTimeout(t); console.log(m.toString()); s.close(); });
  s.on("error", (e) => { clearTimeout(t); console.log(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`); s.close(); });
  s.connect(port, addr, () => s.send(arg ?? "ping"));
} else if (mode === "udpburst") {
  // Back-to-back datagrams of one flow, the same size: what tslb --coalesce joins into one
  // write. Every echo must come back intact (a bad checksum would be dropped by the kernel).
  const n = Number(arg ?? 100);
  const s = createSocket(addr.includes(":") ? "udp6" : "udp4");
  const seen = new Set<number>();
  let replies = 0;
  let quiet = setTimeout(done, 2000);
  function done() { console.log(`${replies} ${seen.size}`); s.close(); }
  s.on("message", (m) => {
    replies++;
    const x = /^rs[12] \S+ b(\d{5})$/.exec(m.toString());
    if (x) seen.add(Number(x[1]));
    clearTimeout(quiet);
    quiet = setTimeout(done, 2000);
  });
  s.connect(port, addr, () => { for (let i = 0; i < n; i++) s.send(`b${String(i).padStart(5, "0")}`); });
} else if (mode === "upload") {
  // One HTTP POST of `arg` bytes on a new connection (full-size, DF segments: path MTU
  // discovery must work for it to complete). Prints the answer or "error ...".
  const size = Number(arg ?? 100000);
  const body = new Uint8Array(size).fill(0x61);
  const s = connect({ host: addr, port });
  let out = "";
  const t = setTimeout(() => { console.log("error timeout"); process.exit(1); }, 10000);
  s.on("connect", () => {
    s.write(`POST / HTTP/1.0\r\nHost: ${addr}\r\nContent-Length: ${size}\r\n\r\n`);
    s.write(body);
  });
  s.on("data", (d) => { out += d.toString(); });
  s.on("end", () => { clearTimeout(t); console.log(out.split("\r\n\r\n")[1]?.trim() ?? ""); });
  s.on("error", (e) => { clearTimeout(t); console.log(`error ${e.message}`); });
} else if (mode === "put") {
  // The same byte pattern as the test servers' /big file, so both ends can check the sum.
  const size = Number(arg ?? 100000);
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
  const s = connect({ host: addr, port });
  let out = "";
  const t = setTimeout(() => { console.log("error timeout"); process.exit(1); }, 10000);
  s.on("connect", () => {
    s.write(`PUT /up/upload.bin HTTP/1.0\r\nHost: ${addr}\r\nContent-Length: ${size}\r\n\r\n`);
    s.write(body);
  });
  s.on("data", (d) => { out += d.toString(); });
  s.on("end", () => { clearTimeout(t); console.log(out.slice(9, 12)); });
  s.on("error", (e) => { clearTimeout(t); console.log(`error ${e.message}`); });
} else if (mode === "download") {
  // One HTTP/1.0 GET of `arg`: prints "<status> <body bytes> <sum of body bytes mod 2^32>".
  const s = connect({ host: addr, port });
  const chunks: Buffer[] = [];
  const t = setTimeout(() => { console.log("error timeout"); process.exit(1); }, 10000);
  s.on("connect", () => s.write(`GET ${arg ?? "/"} HTTP/1.0\r\nHost: ${addr}\r\n\r\n`));
  s.on("data", (d: Buffer) => chunks.push(d));
  s.on("end", () => {
    clearTimeout(t);
    const all = Buffer.concat(chunks);
    const head = all.indexOf("\r\n\r\n");
    const body = all.subarray(head + 4);
    let sum = 0;
    for (const b of body) sum = (sum + b) >>> 0;
    console.log(`${all.toString("latin1", 9, 12)} ${body.length} ${sum}`);
  });
  s.on("error", (e) => { clearTimeout(t); console.log(`error ${e.message}`); });
} else if (mode === "keepalive") {
  // One connection for the whole run: each line on stdin sends one request on it and
  // prints the body (or "closed"). Ends on EOF or after 60 s.
  const s = connect({ host: addr, port });
  let buf = "";
  let pending: ((b: string) => void) | null = null;
  s.on("data", (d) => {
    buf += d.toString();
    const m = /\r\n\r\n/.exec(buf);
    const len = Number(/content-length: (\d+)/i.exec(buf)?.[1] ?? -1);
    if (m && len >= 0 && buf.length >= m.index + 4 + len) {
      const body = buf.slice(m.index + 4, m.index + 4 + len).trim();
      buf = buf.slice(m.index + 4 + len);
      pending?.(body);
    }
  });
  s.on("close", () => pending?.("closed"));
  s.on("error", () => pending?.("closed"));
  setTimeout(() => process.exit(0), 60_000);
  await new Promise((r) => s.once("connect", r));
  for await (const _line of console) {
    const body = await new Promise<string>((resolve) => {
      pending = resolve;
      s.write(`GET / HTTP/1.1\r\nHost: ${addr}\r\nConnection: keep-alive\r\n\r\n`);
      setTimeout(() => resolve("timeout"), Number(process.env.TSLB_CLIENT_TIMEOUT_MS ?? 2000));
    });
    console.log(body);
  }
  s.destroy();
} else {
  console.error("usage: client.ts http|udp|keepalive ADDR PORT [COUNT|TEXT]");
  process.exit(2);
}
