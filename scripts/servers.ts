// Tiny real servers for tests and the demo, run inside a real-server namespace:
//   bun scripts/servers.ts NAME ADDR[,ADDR...] HTTP_PORT UDP_PORT
// HTTP answers every request with "NAME <client address>\n" (so a test sees which server
// answered and that the client's own address arrived); UDP echoes "NAME <client> <data>",
// and for a datagram that starts with a PROXY v2 header "NAME <client> <data> proxy=<source>".
// Exits by itself after `TSLB_SERVER_TTL` seconds (default 600), so nothing outlives a run.
const [name, addr, httpPort, udpPort] = process.argv.slice(2);
if (!name || !addr || !httpPort || !udpPort) {
  console.error("usage: servers.ts NAME ADDR HTTP_PORT UDP_PORT");
  process.exit(2);
}
const PROXY_V2_SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** The source address of a PROXY v2 header at the start of `b` (IPv4 or IPv6), or null. */
function proxyV2Source(b: Uint8Array): string | null {
  if (b.length < 16 || PROXY_V2_SIG.some((x, i) => b[i] !== x) || b[12] !== 0x21) return null;
  const fam = b[13] >> 4;
  if (fam === 1 && b.length >= 28) return [...b.subarray(16, 20)].join(".");
  if (fam !== 2 || b.length < 52) return null;
  const words: string[] = [];
  for (let i = 16; i < 32; i += 2) words.push(((b[i] << 8) | b[i + 1]).toString(16));
  return words.join(":");
}

const ready: string[] = [];
for (const a of addr.split(",")) {
  const server = Bun.serve({
    hostname: a,
    port: Number(httpPort),
    async fetch(req, srv) {
      const ip = srv.requestIP(req)?.address ?? "?";
      // POST: also report how many body bytes arrived (uploads through tunnels, PMTU).
      const extra = req.method === "POST" ? ` ${(await req.arrayBuffer()).byteLength}` : "";
      return new Response(`${name} ${ip}${extra}\n`, { headers: { "content-type": "text/plain" } });
    },
  });
  const udp = await Bun.udpSocket({
    hostname: a,
    port: Number(udpPort),
    socket: {
      data(sock, buf, port, from) {
        const pp = proxyV2Source(buf);
        const data = pp ? buf.subarray(16 + ((buf[14] << 8) | buf[15])) : buf;
        sock.send(`${name} ${from} ${data.toString()}${pp ? ` proxy=${pp}` : ""}`, port, from);
      },
    },
  });
  ready.push(`http://${a.includes(":") ? `[${a}]` : a}:${server.port} udp ${a}:${udp.port}`);
}
console.log(`ready ${name} ${ready.join(" ")}`);
setTimeout(() => process.exit(0), Number(process.env.TSLB_SERVER_TTL ?? 600) * 1000);
export {};
