// Client side of the decap tests: listens on ADDR:PORT (UDP) and prints one JSON line per
// datagram {from, port, data}, then exits after COUNT datagrams or TIMEOUT_MS.
//   bun udp_listen.ts ADDR PORT COUNT TIMEOUT_MS     (prints "ready" first)
const [addr, portText, countText, timeoutText] = process.argv.slice(2);
let left = Number(countText);
const sock = await Bun.udpSocket({
  hostname: addr,
  port: Number(portText),
  socket: {
    data(_s, buf, port, from) {
      console.log(JSON.stringify({ from, port, data: buf.toString() }));
      if (--left <= 0) process.exit(0);
    },
  },
});
console.log(`ready ${sock.port}`);
setTimeout(() => process.exit(0), Number(timeoutText));
export {};
