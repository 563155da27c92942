// Receive packet steering (io/rps.ts): the allowed-CPU mask as /proc/self/status gives it,
// and rps_cpus written on every rx queue (into a scratch directory laid out like sysfs).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allowedCpuMask, maskCpuCount, setRps } from "../../src/io/rps.ts";
import { daemonArgs, splitGlobalOptions } from "../../src/control/options.ts";

const s = suite("rps: receive steering on tslb's queues");

s("the mask comes from Cpus_allowed, groups and all; its CPUs are counted", () => {
  assert.is(allowedCpuMask("Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n"), "3");
  assert.is(allowedCpuMask("Cpus_allowed:\tffffffff,00000001\n"), "ffffffff,00000001");
  assert.is(allowedCpuMask("nothing here\n"), "");
  assert.is(maskCpuCount("3"), 2);
  assert.is(maskCpuCount("ffffffff,00000001"), 33);
  assert.is(maskCpuCount(""), 0);
  assert.ok(maskCpuCount(allowedCpuMask()) >= 1, "this process may run somewhere");
});

s("every rx queue gets the mask; one CPU or an unwritable sysfs says why instead", () => {
  const dir = mkdtempSync(join(tmpdir(), "tslb-rps-"));
  try {
    for (const q of [0, 1]) mkdirSync(join(dir, "tslb0", "queues", `rx-${q}`), { recursive: true });
    assert.is(setRps("tslb0", 2, "3", dir), "");
    for (const q of [0, 1]) assert.is(readFileSync(join(dir, "tslb0", "queues", `rx-${q}`, "rps_cpus"), "utf8"), "3\n");
    assert.is(setRps("tslb0", 1, "1", dir), "one CPU: nothing to steer to");
    assert.ok(setRps("nosuch", 1, "3", dir).length > 0, "a missing queue is reported, not thrown");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

s("--rps on|off (and TSLB_RPS) reach the options; on by default; daemons restart with it", () => {
  assert.is(splitGlobalOptions([], {}).opts.rps, true);
  assert.is(splitGlobalOptions(["--rps", "off"], {}).opts.rps, false);
  assert.is(splitGlobalOptions([], { TSLB_RPS: "off" }).opts.rps, false);
  assert.throws(() => splitGlobalOptions(["--rps", "maybe"], {}), /--rps wants on or off/);
  const a = daemonArgs(splitGlobalOptions(["--rps", "off"], {}).opts);
  assert.equal(a.slice(a.indexOf("--rps"), a.indexOf("--rps") + 2), ["--rps", "off"]);
});

s.run();
