// The control socket: a Unix stream socket, mode 0600 (owner only, like ipvsadm needing
// root), one request per connection and one reply, each a JSON line with maybe a text
// body after it (framing.ts). Requests are size-limited; malformed ones get an error
// reply and never reach the daemon's state.
import { chmodSync, existsSync, unlinkSync } from "node:fs";
import type { Socket } from "bun";
import { peerCred } from "../io/libc.ts";
import { decodeMessage, encodeMessage } from "./framing.ts";
import type { Reply, Request } from "./protocol.ts";

/** Largest request accepted: a -R of 10 000 services × 10 servers is ~5 MB of text (27 MB as commands). */
export const MAX_REQUEST_BYTES = 64 << 20;
/** Seconds a client may take to send its request line. */
const REQUEST_TIMEOUT_SEC = 10;

/** The request arrives in chunks: kept as they come, decoded once the line (and its body) is in. */
interface Conn {
  chunks: Buffer[];
  size: number;
  /** Where the request line ends, once its newline has arrived (-1 before). */
  lineEnd: number;
  /** Bytes the whole request takes, once its line said (0 before): its body is not re-read per chunk. */
  need: number;
  done: boolean;
  refused: boolean;
  /** The reply, and how much of it the socket has taken (a listing of 100 000 servers is
   *  megabytes: a write may take only part of it, the rest goes on drain). */
  out: Buffer | null;
  sent: number;
  /** Answered before the request ended (too large): only our side is shut after the reply. */
  lingering: boolean;
}

/** Listens on `path`; returns a function that stops listening and removes the socket file. */
export function serveControl(path: string, handle: (r: Request) => Promise<Reply>, log: (m: string) => void): () => void {
  if (existsSync(path)) unlinkSync(path); // stale: the caller checked that no daemon answers
  const old = process.umask(0o177);
  let server: ReturnType<typeof Bun.listen<Conn>>;
  try {
    server = Bun.listen<Conn>({
      unix: path,
      socket: {
        open(s) {
          s.data = { chunks: [], size: 0, lineEnd: -1, need: 0, done: false, refused: false, out: null, sent: 0, lingering: false };
          // Mode 0600 already keeps others out; the peer's credentials are checked too, so a
          // socket whose mode was widened (or a passed descriptor) still only serves its owner.
          // The refusal is sent once the request has been read: closing a unix socket with
          // unread input resets it, and the client would see ECONNRESET instead of the reason.
          if (!peerAllowed(s, log)) s.data.refused = true;
          // A client that never finishes its request line is cut off (no slow-loris holds).
          s.timeout(REQUEST_TIMEOUT_SEC);
        },
        drain(s) { pump(s); },
        timeout(s) {
          if (s.data.refused) return refuse(s);
          if (!s.data.done) finish(s, { ok: false, code: "ETIMEDOUT", message: "incomplete request", exit: 255 });
        },
        end(s) {
          if (s.data.lingering) return void s.end();
          if (s.data.refused) return refuse(s);
          // The client closed its side before a whole line arrived.
          if (!s.data.done) finish(s, { ok: false, code: "EINVAL", message: "incomplete request", exit: 255 });
        },
        data(s, chunk) {
          const c = s.data;
          if (c.done) return;
          if (c.refused) return refuse(s);
          // Only the new chunk is searched: rescanning the whole buffer made a 27 MB
          // request quadratic (it timed out).
          const nl = c.lineEnd < 0 ? chunk.indexOf(10) : -1;
          c.chunks.push(chunk);
          c.size += chunk.length;
          if (c.size > MAX_REQUEST_BYTES) {
            // The client is still sending: closing now would reset the socket and lose the
            // answer. Answer, shut our side only, and drop what else comes until it closes.
            c.chunks = [];
            c.lingering = true;
            return finish(s, { ok: false, code: "E2BIG", message: "request too large", exit: 255 });
          }
          if (nl >= 0) c.lineEnd = c.size - chunk.length + nl;
          if (c.lineEnd < 0 || c.size < c.need) return;
          const buf = Buffer.concat(c.chunks, c.size);
          c.chunks = [buf];
          const m = decodeMessage(buf, c.lineEnd);
          if (m !== null && "missing" in m) { c.need = c.size + m.missing; return; } // the body is still coming
          if (m === null || typeof m.head.op !== "string") {
            return finish(s, { ok: false, code: "EINVAL", message: "malformed request", exit: 255 });
          }
          const req = (m.text === undefined ? m.head : { ...m.head, text: m.text }) as Request;
          c.chunks = [];
          c.done = true;
          handle(req).then((r) => finish(s, r), (e) => {
            log(`request failed: ${e}`);
            finish(s, { ok: false, code: "EIO", message: String(e), exit: 255 });
          });
        },
        error(_s, e) { log(`control socket: ${e.message}`); },
      },
    });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  return () => {
    server.stop(true);
    if (existsSync(path)) unlinkSync(path);
  };
}

/** Root and the daemon's own user may talk to it; nobody else. */
function peerAllowed(s: Socket<Conn>, log: (m: string) => void): boolean {
  const fd = (s as unknown as { fd?: number }).fd;
  if (typeof fd !== "number" || fd < 0) return true; // no descriptor to ask: the file mode decides
  try {
    const cred = peerCred(fd);
    if (cred.uid === 0 || cred.uid === process.geteuid?.()) return true;
    log(`control socket: refused uid ${cred.uid} (pid ${cred.pid})`);
    return false;
  } catch (e) {
    log(`control socket: ${(e as Error).message}`);
    return false;
  }
}

function refuse(s: Socket<Conn>): void {
  if (!s.data.done) finish(s, { ok: false, code: "EPERM", message: "Permission denied (you must be root)", exit: 2 });
}

function finish(s: Socket<Conn>, r: Reply): void {
  s.data.done = true;
  s.data.chunks = [];
  // Text data (a listing) goes as the body, unescaped.
  s.data.out = r.ok && typeof r.data === "string" ? encodeMessage({ ok: true }, r.data) : encodeMessage(r);
  pump(s);
}

/** Writes what the socket takes of the reply; closes once all of it is out. */
function pump(s: Socket<Conn>): void {
  const c = s.data;
  if (c.out === null) return;
  while (c.sent < c.out.length) {
    const n = s.write(c.out.subarray(c.sent));
    if (n <= 0) return;
    c.sent += n;
  }
  c.out = null;
  if (c.lingering) s.shutdown();
  else s.end();
}
