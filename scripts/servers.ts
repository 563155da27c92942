// Tiny real servers for tests and the demo, run inside a real-server namespace:
//   bun scripts/servers.ts NAME ADDR[,ADDR...] HTTP_PORT UDP_PORT
// HTTP answers every request with "NAME <client address>\n" (so a test sees which server
// answered and that the client's own address arrived); UDP echoes "NAME <client> <data>".
// Exits by itself after `TSLB_SERVER_TTL` seconds (default 600), so nothing outlives a run.
const [name, addr, httpPort, udpPort] = process.argv.slice(2);
if (!name || !addr || !httpPort || !udpPort) {
  console.error("usage: servers.ts NAME ADDR HTTP_PORT UDP_PORT");
  process.exit(2);
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
        sock.send(`${name} ${from} ${buf.toString()}`, port, from);
      },
    },
  });
  ready.push(`http://${a.includes(":") ? `[${a}]` : a}:${server.port} udp ${a}:${udp.port}`);
}
console.log(`ready ${name} ${ready.join(" ")}`);
setTimeout(() => process.exit(0), Number(process.env.TSLB_SERVER_TTL ?? 600) * 1000);
export {};
