// sysctl through /proc/sys (e.g. "net/ipv4/ip_forward", "net/ipv4/conf/tslb0/rp_filter").
//
// Contract: control plane only; paths are relative to /proc/sys with "/" separators, never
// dots, because an interface name may contain "." (an absolute path is used as is).
// Failures throw SysError, e.g. "sysctl write /proc/sys/net/ipv4/ip_forward: Invalid
// argument (EINVAL)".
import { readFileSync, writeFileSync } from "node:fs";
import { EIO, SysError } from "./libc.ts";

const ROOT = "/proc/sys/";

function full(path: string): string {
  return path.startsWith("/") ? path : ROOT + path;
}

function sysErr(op: string, path: string, e: unknown): SysError {
  // Node reports the failed call's errno as a negative number.
  const n = (e as { errno?: number }).errno;
  return new SysError(op, typeof n === "number" ? Math.abs(n) : EIO, full(path));
}

/** The value with its trailing newline removed (multi-value entries keep their tabs). */
export function sysctlRead(path: string): string {
  try {
    return readFileSync(full(path), "utf8").replace(/\n$/, "");
  } catch (e) {
    throw sysErr("sysctl read", path, e);
  }
}

export function sysctlWrite(path: string, value: string | number): void {
  try {
    writeFileSync(full(path), `${value}\n`);
  } catch (e) {
    throw sysErr("sysctl write", path, e);
  }
}
