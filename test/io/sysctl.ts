// sysctl read/write through /proc/sys. Writes happen only inside a throw-away namespace.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { nsProbe, sh, withNetns } from "../helpers/io_netns.ts";
import { sysctlRead, sysctlWrite } from "../../src/io/sysctl.ts";
import { SysError } from "../../src/io/libc.ts";

const sysctl = suite("sysctl");

sysctl("read and write per-namespace values", async () => {
  await withNetns("io-sysctl", (ns) => {
    const r = nsProbe(ns, "io_sysctl_probe.ts");
    assert.is(r.forwardBefore, "0", "a new namespace does not forward");
    assert.is(r.forwardAfter, "1");
    assert.is(r.rpFilter, "2");
    assert.match(r.portRange, /^\d+\t\d+$/, "multi-value entries keep their tab");
    assert.is(r.badValue, "sysctl write /proc/sys/net/ipv4/ip_forward: Invalid argument (EINVAL)");
    assert.is(sh(["ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"]).out.trim(), "1");
  });
});

sysctl("a missing entry throws SysError ENOENT (read and write)", () => {
  const path = "net/ipv4/conf/tslbt-none/rp_filter";
  try {
    sysctlRead(path);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, SysError);
    assert.is((e as SysError).errno, 2);
    assert.is((e as Error).message, `sysctl read /proc/sys/${path}: No such file or directory (ENOENT)`);
  }
  assert.throws(() => sysctlWrite(path, 1), (e: unknown) => e instanceof SysError && e.code === "ENOENT");
});

sysctl.run();
