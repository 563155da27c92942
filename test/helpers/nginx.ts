// nginx as a real server that speaks the PROXY protocol (`listen ... proxy_protocol`), for
// the --proxy-protocol end-to-end test. Installed from Debian when missing (bounded).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tslb } from "./tslb.ts";

const NGINX = "/usr/sbin/nginx";

/** nginx, installed with apt-get if needed; throws with the reason when it cannot be had. */
export function ensureNginx(): string {
  if (existsSync(NGINX)) return NGINX;
  const r = Bun.spawnSync(["timeout", "300", "apt-get", "install", "-y", "--no-install-recommends", "nginx-light"], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, stdout: "pipe", stderr: "pipe",
  });
  if (!existsSync(NGINX)) throw new Error(`nginx is needed and could not be installed: ${r.stderr.toString().slice(-400)}`);
  return NGINX;
}

/** Size of the /big file. */
export const BIG_BYTES = 5 * 1024 * 1024;
/** Size of the /small file: sent with sendfile, so headers and body leave as two segments. */
export const SMALL_BYTES = 200;

/**
 * A repeating non-trivial byte pattern (also what `scripts/client.ts put` sends): a
 * dropped, duplicated or reordered byte changes patternSum.
 */
export function patternBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
  return b;
}

/** The sum of the bytes mod 2^32, as `scripts/client.ts download` prints it. */
export function byteSum(b: Uint8Array): number {
  let sum = 0;
  for (const x of b) sum = (sum + x) >>> 0;
  return sum;
}

/** The upload (PUT /up/upload.bin) real server "rs1" or "rs2" stored under `dir`; throws unless exactly one did. */
export function storedUpload(dir: string): Uint8Array {
  const found = ["rs1", "rs2"].map((n) => join(dir, n, "html", "up", "upload.bin")).filter((f) => existsSync(f));
  if (found.length !== 1) throw new Error(`the upload is stored on ${found.length} servers, not one`);
  return readFileSync(found[0]);
}

/** storedUpload(), and the file removed, so the next PUT is checked afresh (whichever server takes it). */
export function takeUpload(dir: string): Uint8Array {
  const body = storedUpload(dir);
  for (const n of ["rs1", "rs2"]) rmSync(join(dir, n, "html", "up", "upload.bin"), { force: true });
  return body;
}

export interface NginxServer {
  /** The access log's lines: "<proxy_protocol_addr> <status> <request_length> <bytes_sent>". */
  log(): string[];
  stop(): void;
}

/**
 * nginx in namespace `ns` on `addrs` (IPv4/IPv6, port 8080) with the PROXY protocol
 * required. GET / answers "<name> <proxy_protocol_addr>"; GET /big is a 5 MiB file, GET
 * /small a 200-byte one sent with sendfile (headers and body in two segments); PUT
 * /up/NAME stores up to 16 MiB as <dir>/<name>/html/up/NAME.
 */
export async function startNginx(ns: string, name: string, addrs: string[], dir: string, proxyProtocol = true): Promise<NginxServer> {
  const root = join(dir, name);
  mkdirSync(join(root, "html", "up"), { recursive: true });
  writeFileSync(join(root, "html", "big"), patternBytes(BIG_BYTES));
  writeFileSync(join(root, "html", "small"), patternBytes(SMALL_BYTES));
  const pp = proxyProtocol ? " proxy_protocol" : "";
  const listens = addrs.map((a) => `listen ${a.includes(":") ? `[${a}]` : a}:8080${pp};`).join("\n    ");
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${root}/nginx.pid;
error_log ${root}/error.log warn;
events { worker_connections 256; }
http {
  log_format pp '${proxyProtocol ? "$proxy_protocol_addr" : "$remote_addr"} $status $request_length $bytes_sent';
  access_log ${root}/access.log pp;
  client_body_temp_path ${root}/body;
  proxy_temp_path ${root}/proxy;
  fastcgi_temp_path ${root}/fastcgi;
  uwsgi_temp_path ${root}/uwsgi;
  scgi_temp_path ${root}/scgi;
  server {
    ${listens}
    root ${root}/html;
    client_max_body_size 16m;
    location = / { return 200 "${name} ${proxyProtocol ? "$proxy_protocol_addr" : "$remote_addr"}\\n"; }
    location = /big { }
    location = /small { sendfile on; }
    location /up/ { dav_methods PUT; }
  }
}
`;
  writeFileSync(join(root, "nginx.conf"), conf);
  const p = Bun.spawn(["timeout", "600", "ip", "netns", "exec", ns, NGINX, "-c", join(root, "nginx.conf"), "-p", root], {
    stdout: "ignore", stderr: "inherit",
  });
  // Ready when it answers the port (no PROXY header: nginx closes, which is answer enough).
  for (let i = 0; ; i++) {
    const probe = Bun.spawnSync(["ip", "netns", "exec", ns, "bash", "-c", `exec 3<>/dev/tcp/${addrs[0]}/8080`]);
    if (probe.exitCode === 0) break;
    if (i === 100 || p.exitCode !== null) throw new Error(`nginx ${name} did not start (see its error above)`);
    await Bun.sleep(50);
  }
  return {
    log: () => (existsSync(join(root, "access.log")) ? readFileSync(join(root, "access.log"), "utf8").trim().split("\n").filter(Boolean) : []),
    stop: () => p.kill(),
  };
}

/**
 * What an nginx e2e file sets up besides its topology: a scratch directory, the nginx
 * servers (one per real-server namespace) and other processes it starts; teardown()
 * stops the daemon on `socket`, then all of them, deletes the topology's namespaces and
 * the directory. One per file, made at load time; teardown() goes in the suite's after().
 */
export class NginxFixture {
  readonly dir: string;
  readonly servers: NginxServer[] = [];
  /** Other processes to kill at teardown (UDP echo servers and the like). */
  readonly procs: { kill(): void }[] = [];

  constructor(name: string) {
    this.dir = mkdtempSync(join(tmpdir(), `tslb-nginx-${name}-`));
  }

  /** nginx in rs1 on `rs1Addrs` and in rs2 on `rs2Addrs` (see startNginx). */
  async startServers(ns: { rs1: string; rs2: string }, rs1Addrs: string[], rs2Addrs: string[], proxyProtocol = true): Promise<void> {
    this.servers.push(await startNginx(ns.rs1, "rs1", rs1Addrs, this.dir, proxyProtocol), await startNginx(ns.rs2, "rs2", rs2Addrs, this.dir, proxyProtocol));
  }

  teardown(topo: { ns: { lb: string }; destroy(): void }, socket: string): void {
    tslb(topo.ns.lb, socket, ["--shutdown"]);
    for (const s of this.servers) s.stop();
    for (const p of this.procs) p.kill();
    topo.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
