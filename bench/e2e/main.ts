// The end-to-end bench itself (bench/e2e.ts is its entry and documents the settings):
// settings, tools, the C programs, the topology, the interleaved wrk matrix, the pps
// test, the report, and the cleanup that runs on every way out.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { sh } from "../../scripts/topology.ts";
import { BIN, BUN, EMPTY_DIR, ROOT, ensureBinary } from "../../test/helpers/tslb.ts";
import { CONFIGS, type Config, type Ctx, type Running, Skip, flagsProblem, start } from "./configs.ts";
import { measurePps } from "./pps.ts";
import { cpuSeconds, killAll, machineCpuSeconds } from "./proc.ts";
import { type PpsRecord, type RunRecord, TESTS, type Test, httpTable, ppsTable } from "./report.ts";
import { BenchTopology } from "./topo.ts";
import { measure, warmUp } from "./wrk.ts";

if (process.getuid?.() !== 0) {
  console.error("e2e: needs root (network namespaces)");
  process.exit(1);
}

/** A setting from --name=value or the environment variable NAME. */
function setting(name: string): string | undefined {
  const a = process.argv.find((x) => x.toLowerCase().startsWith(`--${name.toLowerCase().replace(/_/g, "-")}=`));
  return a ? a.slice(a.indexOf("=") + 1) : process.env[name];
}

const QUICK = setting("QUICK") === "1" || process.argv.includes("--quick");
const DUR = Number(setting("DUR") ?? (QUICK ? 2 : 10));
const PASSES = Number(setting("PASSES") ?? (QUICK ? 1 : 2));
const PPS = setting("PPS") !== "0";
const PPS_DUR = Number(setting("PPS_DUR") ?? (QUICK ? 2 : 5));
const ONLY = setting("ONLY")?.split(",").map((s) => s.trim()).filter(Boolean);
const TEST_IDS = setting("TESTS")?.split(",").map((s) => s.trim()).filter(Boolean) ?? (QUICK ? ["ka50", "close50", "bulk"] : TESTS.map((t) => t.id));
const STAMP = new Date().toISOString().replace(/[:T]/g, "-").slice(0, 19);
const OUT = setting("OUT") ?? `/tmp/tslb-bench-e2e-${STAMP}`;

for (const [k, v] of [["DUR", DUR], ["PASSES", PASSES], ["PPS_DUR", PPS_DUR]] as const) {
  if (!Number.isInteger(v) || v < 1 || v > 600) { console.error(`e2e: ${k} must be an integer from 1 to 600`); process.exit(2); }
}
const unknown = [...(ONLY ?? []).filter((n) => !CONFIGS.some((c) => c.name === n)), ...TEST_IDS.filter((id) => !TESTS.some((t) => t.id === id))];
if (unknown.length) {
  console.error(`e2e: unknown ${unknown.join(", ")}; configurations: ${CONFIGS.map((c) => c.name).join(" ")}; tests: ${TESTS.map((t) => t.id).join(" ")}`);
  process.exit(2);
}
const configs = CONFIGS.filter((c) => (ONLY ? ONLY.includes(c.name) : !QUICK || c.quick));
const tests = TESTS.filter((t) => TEST_IDS.includes(t.id));

const WORK = mkdtempSync("/tmp/tslbbench-");
const LOGS = join(OUT, "logs");
mkdirSync(LOGS, { recursive: true });
const topo = new BenchTopology(WORK, LOGS);

let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  killAll();
  topo.destroy();
  rmSync(WORK, { recursive: true, force: true });
  rmSync(EMPTY_DIR, { recursive: true, force: true });
}
process.once("exit", cleanup);
for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(sig, () => {
    console.log(`\ne2e: ${sig}, cleaning up`);
    cleanup();
    process.exit(code);
  });
}

/** Every run so far, rewritten to OUT/runs.json after each one: an interrupted sitting keeps its data. */
const record = { http: [] as RunRecord[], pps: [] as PpsRecord[] };
function persist(): void {
  writeFileSync(join(OUT, "runs.json"), JSON.stringify(record, null, 1));
}

const out: string[] = [];
/** Prints and keeps for results.md. */
function say(s = ""): void {
  console.log(s);
  out.push(s);
}

function firstLine(argv: string[]): string {
  const r = sh(argv, true);
  return (r.out + r.err).trim().split("\n")[0] ?? "";
}

function machineLine(): string {
  const model = cpus()[0]?.model ?? "?";
  const mtime = existsSync(BIN) ? statSync(BIN).mtime.toISOString().slice(0, 19) : "missing";
  return `machine: nproc ${firstLine(["nproc"])}, CPU ${model}, kernel ${firstLine(["uname", "-r"])}, ${new Date().toISOString()}; ` +
    `bun ${Bun.version}, build/tslb of ${mtime} (copied for the sitting); ${firstLine(["wrk", "-v"]).replace(/ \[.*$/, "")}; ` +
    `${firstLine(["haproxy", "-v"]).replace(/ - https.*$/, "")}; ${firstLine(["nginx", "-v"])}`;
}

/** apt-get install, with one apt-get update if the first attempt fails. */
function aptInstall(pkgs: string[]): void {
  if (pkgs.length === 0) return;
  console.log(`e2e: installing ${pkgs.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const inst = () => Bun.spawnSync(["timeout", "600", "apt-get", "install", "-y", "-q", "--no-install-recommends", ...pkgs], { env, stdout: "ignore", stderr: "pipe" });
  if (inst().exitCode !== 0) {
    Bun.spawnSync(["timeout", "600", "apt-get", "update", "-q"], { env, stdout: "ignore", stderr: "ignore" });
    const r = inst();
    if (r.exitCode !== 0) console.log(`e2e: apt-get install failed: ${r.stderr.toString().trim().split("\n").slice(-1)[0]}`);
  }
}

const has = (cmd: string) => sh(["sh", "-c", `command -v ${cmd}`], true).code === 0;
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/** The tools, installed when missing; what stays missing skips its rows (wrk is required). */
function ensureTools(): Map<string, string> {
  const want: [boolean, string][] = [[has("wrk"), "wrk"], [has("nginx"), "nginx-light"], [existsSync(STREAM_MODULE), "libnginx-mod-stream"],
    [has("haproxy"), "haproxy"], [has("nft"), "nftables"], [has("taskset"), "util-linux"]];
  aptInstall(want.filter(([ok]) => !ok).map(([, p]) => p));
  const missing = new Map<string, string>();
  if (!has("wrk") || !has("nginx")) throw new Error("wrk and nginx are needed and could not be installed");
  if (!has("haproxy")) missing.set("haproxy", "haproxy is not installed");
  if (!existsSync(STREAM_MODULE)) missing.set("nginx", `${STREAM_MODULE} is missing (libnginx-mod-stream)`);
  if (!has("cc")) missing.set("ctun", "no C compiler (cc): the C forwarder is not built");
  if (!has("cc")) missing.set("cxdp", "no C compiler (cc): the C forwarder is not built");
  return missing;
}

/** cc -O2 for both C sources into WORK/build; null when there is no cc. */
function buildC(): { tunnat: string | null; udpflood: string | null; xdpnat: string | null } {
  if (!has("cc")) return { tunnat: null, udpflood: null, xdpnat: null };
  const dir = join(WORK, "build");
  mkdirSync(dir, { recursive: true });
  const one = (name: string) => {
    const exe = join(dir, name);
    sh(["cc", "-O2", "-Wall", "-o", exe, join(import.meta.dir, "..", "c", `${name}.c`)]);
    return exe;
  };
  return { tunnat: one("tunnat"), udpflood: one("udpflood"), xdpnat: one("xdpnat") };
}

/**
 * The C forwarder a tslb row compares with: vnet_hdr offloads on both sides (tslb's
 * --offload defaults to on where the binary has it), or on neither; the other one when
 * the preferred one did not run.
 */
function cRefFor(ctx: Ctx, ran: (name: string) => boolean): (c: Config) => string {
  const offloadDefault = flagsProblem(ctx, ["--offload", "on"]) === "";
  return (c) => {
    const vnet = c.kind === "tslb" && offloadDefault && !(c.flags ?? []).includes("off");
    const [want, other] = vnet ? ["c-tun-vnet", "c-tun"] : ["c-tun", "c-tun-vnet"];
    return ran(want) || !ran(other) ? want : other;
  };
}

const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "-");

/** One wrk measurement of one configuration: start it, warm up, measure with CPU, stop it. */
async function httpRun(c: Config, t: Test, pass: number, ctx: Ctx): Promise<RunRecord> {
  const rec: RunRecord = { config: c.name, test: t.id, pass, lbUsPerReq: null, lbCpuPct: null, helperUsPerReq: null, boxUsPerReq: null, boxSysPct: null };
  const r: Running = await start(c, ctx);
  try {
    const job = { ns: topo.ns.cl, url: `http://${r.target}${t.path}`, conns: t.conns, seconds: DUR, close: t.kind === "close", paceMs: t.paceMs ?? 0 };
    if (!(await warmUp(job))) console.log(`  (${c.name} ${t.id}: the 1 s warm-up did not end within 12 s: the path stalled)`);
    const lb = r.lb.map((p) => p.pid);
    const helpers = r.helpers.map((p) => p.pid);
    const c0 = cpuSeconds(lb);
    const h0 = cpuSeconds(helpers);
    const m0 = machineCpuSeconds();
    const t0 = performance.now();
    const w = await measure(job, join(LOGS, `${c.name}-${t.id}.txt`));
    const wall = (performance.now() - t0) / 1000;
    const m1 = machineCpuSeconds();
    const cpu = cpuSeconds(lb) - c0;
    const helperCpu = cpuSeconds(helpers) - h0;
    rec.wrk = w;
    rec.boxUsPerReq = ((m1.busy - m0.busy) * 1e6) / Math.max(1, w.requests);
    rec.boxSysPct = m1.busy > m0.busy ? ((m1.sys - m0.sys) / (m1.busy - m0.busy)) * 100 : null;
    if (lb.length) {
      rec.lbUsPerReq = (cpu * 1e6) / Math.max(1, w.requests);
      rec.lbCpuPct = (cpu / wall) * 100;
    }
    if (helpers.length) rec.helperUsPerReq = (helperCpu * 1e6) / Math.max(1, w.requests);
  } finally {
    await r.stop();
  }
  return rec;
}

function describe(rec: RunRecord): string {
  const w = rec.wrk!;
  return `${fmt(w.rps)} req/s, ${fmt(w.mbps, 1)} MB/s, p50 ${fmt(w.p50ms, 2)} ms, p99 ${fmt(w.p99ms, 2)} ms, p99.9 ${fmt(w.p999ms, 2)} ms` +
    (rec.lbUsPerReq !== null ? `, LB ${fmt(rec.lbUsPerReq, 1)} µs/req (${fmt(rec.lbCpuPct ?? NaN)} % CPU)` : "") +
    (rec.helperUsPerReq !== null ? `, decap ${fmt(rec.helperUsPerReq, 1)} µs/req` : "") +
    (rec.boxUsPerReq !== null ? `, machine ${fmt(rec.boxUsPerReq, 1)} µs/req (${fmt(rec.boxSysPct ?? NaN)} % sys)` : "") +
    (w.errors ? `, ${w.errors} errors` : "");
}

/** Walks passes × tests × configurations (odd passes backwards); a Skip drops the configuration. */
async function httpMatrix(ctx: Ctx, skipped: Map<string, string>): Promise<RunRecord[]> {
  const runs = record.http;
  for (let pass = 0; pass < PASSES; pass++) {
    const order = pass % 2 ? [...configs].reverse() : configs;
    for (const t of tests) {
      for (const c of order) {
        if (skipped.has(c.name)) continue;
        const label = `[pass ${pass + 1}/${PASSES}] ${t.id} (c=${t.conns}) ${c.name}`;
        try {
          const rec = await httpRun(c, t, pass, ctx);
          runs.push(rec);
          console.log(`${label}: ${describe(rec)}`);
        } catch (e) {
          if (e instanceof Skip) {
            skipped.set(c.name, e.message);
            console.log(`${label}: skipped: ${e.message}`);
          } else {
            runs.push({ config: c.name, test: t.id, pass, lbUsPerReq: null, lbCpuPct: null, helperUsPerReq: null, boxUsPerReq: null, boxSysPct: null, error: (e as Error).message });
            console.log(`${label}: FAILED: ${(e as Error).message}`);
          }
        }
        persist();
      }
    }
  }
  return runs;
}

/** Forwarded pps of the pps configurations, forwarder pinned to CPU 1, generator to CPU 0. */
async function ppsMatrix(ctx: Ctx, udpflood: string, skipped: Map<string, string>): Promise<PpsRecord[]> {
  const runs = record.pps;
  const two = cpus().length >= 2;
  const pctx: Ctx = { ...ctx, pinCpu: two ? "1" : null, limitSec: PPS_DUR + 60 };
  const list = configs.filter((c) => c.pps);
  for (let pass = 0; pass < PASSES; pass++) {
    for (const c of pass % 2 ? [...list].reverse() : list) {
      if (skipped.has(c.name)) continue;
      const label = `[pps ${pass + 1}/${PASSES}] ${c.name}`;
      let r: Running | undefined;
      try {
        r = await start(c, pctx);
        const res = await measurePps(pctx, r, udpflood, PPS_DUR, two ? "0" : null, join(LOGS, `pps-${c.name}.txt`));
        runs.push({ config: c.name, pass, result: res });
        console.log(`${label}: ${fmt(res.pps)} pps forwarded of ${fmt(res.offeredPps)} offered` +
          (res.cpuPct !== null ? `, forwarder ${fmt(res.cpuPct)} % CPU, ${fmt(res.usPerPkt ?? NaN, 2)} µs/pkt` : "") +
          (res.tunDropsPerSec !== null ? `, TUN drops ${fmt(res.tunDropsPerSec)}/s` : ""));
      } catch (e) {
        if (e instanceof Skip) skipped.set(c.name, e.message);
        else runs.push({ config: c.name, pass, error: (e as Error).message });
        console.log(`${label}: ${e instanceof Skip ? "skipped" : "FAILED"}: ${(e as Error).message}`);
      } finally {
        await r?.stop();
      }
      persist();
    }
  }
  return runs;
}

async function main(): Promise<void> {
  const missing = ensureTools();
  if (setting("BUILD") === "1") sh([BUN, join(ROOT, "scripts", "build.ts")]);
  ensureBinary();
  // The sitting's own copy: other people rebuild build/tslb while a 30-minute sitting runs.
  const bin = join(WORK, "tslb-binary"); // not "tslb": that is the daemon socket's directory
  copyFileSync(BIN, bin);
  chmodSync(bin, 0o755);
  const { tunnat, udpflood, xdpnat } = buildC();
  const skipped = new Map<string, string>();
  for (const c of configs) if (missing.has(c.kind)) skipped.set(c.name, missing.get(c.kind)!);

  say(`# tslb end-to-end bench, ${new Date().toISOString()}`);
  say();
  say(machineLine());
  say(`command: ${["bun", "bench/e2e.ts", ...process.argv.slice(2)].join(" ")}; DUR=${DUR} PASSES=${PASSES} tests=${tests.map((t) => t.id).join(",")} ` +
    `PPS=${PPS ? `on (${PPS_DUR} s)` : "off"}; results in ${OUT}`);
  say();
  for (const c of configs) say(`- ${c.name}: ${c.what}`);
  say();

  const perRun = tests.length * configs.length * PASSES * (DUR + 5) + (PPS ? configs.filter((c) => c.pps).length * PASSES * (PPS_DUR + 5) : 0);
  console.log(`e2e: about ${Math.ceil(perRun / 60)} min`);
  topo.up();
  await topo.startRealServers(perRun * 3 + 600);
  if (PPS) topo.addSinks();
  const ctx: Ctx = { topo, dir: WORK, logDir: LOGS, tunnat, xdpnat, pinCpu: null, limitSec: DUR + 90, bin };
  for (const c of configs) {
    const p = c.kind === "tslb" ? flagsProblem(ctx, c.flags ?? []) : "";
    if (p) skipped.set(c.name, p);
  }
  for (const [name, why] of skipped) console.log(`e2e: ${name} skipped: ${why}`);

  const runs = await httpMatrix(ctx, skipped);
  const ppsRuns = PPS && udpflood ? await ppsMatrix(ctx, udpflood, skipped) : [];
  const cRef = cRefFor(ctx, (name) => runs.some((r) => r.config === name && r.wrk) || ppsRuns.some((r) => r.config === name && r.result));

  say();
  say("## HTTP (wrk -t1, medians over the passes)");
  say();
  say("tput = req/s (bulk: MB/s of wrk's Transfer/sec); LB CPU = user+system time of the balancer's processes over the run; " +
    "ratios only for tslb rows. ×C compares with the C forwarder of the same offload setting: " +
    configs.filter((c) => c.kind === "tslb").map((c) => `${c.name}→${cRef(c)}`).join(", ") + ".");
  say();
  say(httpTable(tests, configs.filter((c) => !skipped.has(c.name) || runs.some((r) => r.config === c.name)), runs, cRef));
  if (PPS) {
    say();
    say(`## Forwarded pps (udpflood: 64-byte packets, 16 flows, ${PPS_DUR} s; forwarder on CPU 1, generator on CPU 0; ` +
      `counted ${topo.sink ? "by an nft netdev ingress counter+drop" : "as rx_packets"} on the real servers)`);
    say();
    say(udpflood ? ppsTable(configs.filter((c) => c.pps), ppsRuns, cRef) : "(no C compiler: no udpflood)");
  }
  if (skipped.size) {
    say();
    for (const [name, why] of skipped) say(`- skipped ${name}: ${why}`);
  }
  writeFileSync(join(OUT, "results.md"), out.join("\n") + "\n");
  persist();
  console.log(`\ne2e: results in ${join(OUT, "results.md")}`);
}

try {
  await main();
} catch (e) {
  console.error(`e2e failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
