// Test helper: assert that a call throws IpvsError with ipvsadm's exact text and status.
import * as assert from "uvu/assert";
import { IpvsError } from "../../src/control/errors.ts";

/** Runs fn and returns the IpvsError it throws; fails the test if it throws anything else
 *  or nothing, or if message / exit (and line, when given) differ. */
export function throwsIpvs(fn: () => unknown, message: string, exit: number, line?: number): IpvsError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof IpvsError)) throw e;
    assert.is(e.message, message);
    assert.is(e.exit, exit, `exit status for "${message}"`);
    if (line !== undefined) assert.is(e.line, line, `line for "${message}"`);
    return e;
  }
  assert.unreachable(`expected IpvsError "${message}" (exit ${exit})`);
  throw new Error("unreachable");
}
