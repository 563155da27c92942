// For unit tests that need real sockets: the test file runs itself again inside a fresh
// network namespace (lo up; nothing in the root namespace is touched or sent to), and
// the outer process only relays the exit status. Call at the top of the file:
//   await inNetns(import.meta.path, "health-tcp");
// In the outer process it never returns; inside the namespace it returns the namespace's
// name at once. The namespace is deleted when the inner run ends, whatever happens.
import { spawnSync } from "node:child_process";

const INNER = "TSLB_TEST_NETNS";

export async function inNetns(file: string, tag: string): Promise<string> {
  const inner = process.env[INNER];
  if (inner) return inner;
  const ns = `tslbt-${tag}-${process.pid}`;
  const run = (cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8" });
  if (run(["ip", "netns", "add", ns]).status !== 0) throw new Error(`cannot create namespace ${ns}`);
  let code = 1;
  try {
    run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    const p = Bun.spawn(["timeout", "120", "ip", "netns", "exec", ns, process.execPath, file], {
      stdout: "inherit", stderr: "inherit", env: { ...process.env, [INNER]: ns },
    });
    code = await p.exited;
  } finally {
    run(["ip", "netns", "del", ns]);
  }
  process.exit(code);
}
