// The CLI's side of the control socket: one request, one reply. Also starts a daemon
// when a state-changing command finds none, as ipvsadm loads ip_vs on first use.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, join } from "node:path";
import { daemonArgs, type GlobalOptions } from "./options.ts";
import { decodeMessage, encodeMessage } from "./framing.ts";
import type { Reply, Request } from "./protocol.ts";

/** Thrown when nothing listens on the socket. */
export class NoDaemon extends Error {}

const START_TIMEOUT_MS = 10_000;

export function request(socketPath: string, req: Request): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (f: () => void) => { if (!settled) { settled = true; f(); } };
    // A socket write may take only part of a large request (a big -R): the rest goes on
    // each drain. A request's text (the -R input) goes raw, as the body (framing.ts).
    const { text, ...head } = req as Request & { text?: string };
    const out = encodeMessage(text === undefined ? req : head, text);
    let sent = 0;
    const pump = (s: { write(b: Uint8Array): number }) => {
      while (sent < out.length) {
        const n = s.write(out.subarray(sent));
        if (n <= 0) return;
        sent += n;
      }
    };
    Bun.connect({
      unix: socketPath,
      socket: {
        open(s) { pump(s); },
        drain(s) { pump(s); },
        data(_s, chunk) { chunks.push(chunk); },
        close() {
          // Decoded once, whole: a multi-byte character may straddle two chunks.
          const buf = Buffer.concat(chunks);
          const nl = buf.indexOf(10);
          const m = nl < 0 ? null : decodeMessage(buf, nl);
          settle(() => {
            if (m === null || "missing" in m) reject(new Error(`bad reply from daemon: ${buf.toString("utf8", 0, 200)}`));
            else resolve((m.text === undefined ? m.head : { ...m.head, data: m.text }) as Reply);
          });
        },
        error(_s, e) { settle(() => reject(e)); },
        connectError(_s, e) { settle(() => reject(new NoDaemon(e.message))); },
      },
    }).catch((e) => settle(() => reject(new NoDaemon(String(e)))));
  });
}

/** argv that runs this same program: the compiled binary alone, or bun + the entry script. */
export function selfCommand(): string[] {
  const main = Bun.main;
  return /\.(ts|js)$/.test(main) && existsSync(main) ? [process.execPath, main] : [process.execPath];
}

export async function isRunning(socketPath: string): Promise<boolean> {
  try {
    const r = await request(socketPath, { op: "ping" });
    return r.ok;
  } catch {
    return false;
  }
}

/** Starts a background daemon with these options and waits until it answers. */
export async function startDaemon(o: GlobalOptions): Promise<void> {
  const dir = dirname(o.socket);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logPath = join(dir, "tslb.log");
  const logFd = openSync(logPath, "a", 0o600);
  const [cmd, ...pre] = selfCommand();
  const child = spawn(cmd, [...pre, ...daemonArgs(o)], { detached: true, stdio: ["ignore", logFd, logFd], env: process.env });
  let exited: number | null = null;
  child.on("exit", (c) => { exited = c ?? 1; });
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`tslb daemon exited with status ${exited}; see ${logPath}`);
    if (await isRunning(o.socket)) return;
    await Bun.sleep(20);
  }
  throw new Error(`tslb daemon did not answer on ${o.socket} within ${START_TIMEOUT_MS / 1000} s; see ${logPath}`);
}

/** Sends `req`, starting a daemon first if none answers and `autostart` is set. */
export async function call(o: GlobalOptions, req: Request, autostart: boolean): Promise<Reply | null> {
  try {
    return await request(o.socket, req);
  } catch (e) {
    if (!(e instanceof NoDaemon)) throw e;
    if (!autostart) return null;
  }
  await startDaemon(o);
  return request(o.socket, req);
}
