// Runs INSIDE a test namespace (test/io/sysctl.ts): reads and writes per-namespace sysctls.
import { sysctlRead, sysctlWrite } from "../../src/io/sysctl.ts";
import { SysError } from "../../src/io/libc.ts";

const errMsg = (f: () => unknown): string => {
  try {
    f();
    return "no error";
  } catch (e) {
    return e instanceof SysError ? e.message : `not a SysError: ${e}`;
  }
};

const out: Record<string, unknown> = {};
out.forwardBefore = sysctlRead("net/ipv4/ip_forward");
sysctlWrite("net/ipv4/ip_forward", 1);
out.forwardAfter = sysctlRead("net/ipv4/ip_forward");
sysctlWrite("net/ipv4/conf/lo/rp_filter", "2");
out.rpFilter = sysctlRead("/proc/sys/net/ipv4/conf/lo/rp_filter");
out.portRange = sysctlRead("net/ipv4/ip_local_port_range");
out.badValue = errMsg(() => sysctlWrite("net/ipv4/ip_forward", "abc"));
console.log(JSON.stringify(out));
