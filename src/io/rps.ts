// Receive packet steering (RPS) on tslb's own TUN and TAP queues. A packet tslb writes is
// processed (routing, forwarding, the next hop's and often the receiving host's stack) in
// the softirq of the writing thread unless the device's rx queue steers it to another
// CPU's backlog. With RPS, that work spreads over the CPUs the daemon may use while the
// worker goes on reading: bulk through NAT on the 2-core bench machine went from 0.90 to
// 1.17 GB/s with one worker (bench/RESULTS.md). `--rps off` leaves the queues alone.
import { readFileSync, writeFileSync } from "node:fs";

/**
 * The CPUs this process may run on, in the kernel's cpumask text (comma-separated
 * 32-bit hex groups, as rps_cpus takes it), from /proc/self/status; "" if unknown.
 */
export function allowedCpuMask(status = readOrEmpty("/proc/self/status")): string {
  const m = /^Cpus_allowed:\s*([0-9a-f,]+)\s*$/m.exec(status);
  return m ? m[1] : "";
}

/** How many CPUs a cpumask text names. */
export function maskCpuCount(mask: string): number {
  let n = 0;
  for (const ch of mask.replace(/,/g, "")) {
    let v = parseInt(ch, 16);
    while (v) { n += v & 1; v >>= 1; }
  }
  return n;
}

/**
 * Sets rps_cpus of rx queues 0..queues-1 of `dev` to `mask`. Returns "" on success or
 * why not (sysfs read-only in a container, say); a single CPU needs no steering.
 */
export function setRps(dev: string, queues: number, mask: string, sysfs = "/sys/class/net"): string {
  if (maskCpuCount(mask) < 2) return "one CPU: nothing to steer to";
  try {
    for (let q = 0; q < queues; q++) writeFileSync(`${sysfs}/${dev}/queues/rx-${q}/rps_cpus`, `${mask}\n`);
    return "";
  } catch (e) {
    return (e as Error).message;
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
