import { suite } from "uvu";
import * as assert from "uvu/assert";
import { FastLineCache, fastLine, fastLineText } from "../../src/cli/fast_line.ts";
import { parseArgs } from "../../src/cli/getopt.ts";
import { makeNames, NO_NAMES } from "../../src/cli/names.ts";
import { IpvsError } from "../../src/control/errors.ts";

const ENV = makeNames("198.18.0.10 web1\n", "http 80/tcp\nhttp 80/udp\n");

/** parseArgs' Command for a line, as JSON text (key order included), or its error. */
function general(argv: string[]): string {
  try {
    const inv = parseArgs(argv, ENV, "ipvsadm");
    return inv.kind === "apply" && inv.cmds.length === 1 ? JSON.stringify(inv.cmds[0]) : `not one command: ${inv.kind}`;
  } catch (e) {
    if (e instanceof IpvsError) return `error: ${e.message}`;
    throw e;
  }
}

const shapes = suite("fastLine takes the lines -S -n and the state file write");

shapes("service and server lines of every common shape equal parseArgs' Commands", () => {
  const lines = [
    "-A -t 198.18.0.1:80 -s rr", "-A -u 198.18.0.1:53 -s wlc", "-A -t 198.18.0.1:80 -s sh -p 360",
    "-A -t 198.18.0.1:443", "-E -t 198.18.0.1:80 -s wrr -p 60", "-A -t [2001:2::1]:80 -s rr -p 100",
    "-A -u [2001:2:0:0::1]:53 -s mh", "-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m -w 1",
    "-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -g -w 0", "-a -u 198.18.0.1:53 -r 198.19.0.1:5353 -i -w 65535",
    "-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m -w 3 -x 100 -y 10", "-e -t 198.18.0.1:80 -r 198.19.0.1:8080 -m -w 2",
    "-a -t 198.18.0.1:80 -r 198.19.0.1:8080", "-a -t [2001:2::1]:80 -r [2001:2::a]:8080 -m -w 1",
    "-a -t 198.18.0.1:80 -r [2001:2::a]:8080 -i -w 1", "-a -t 198.18.0.1:80 -w 4 -m -r 198.19.0.1:0080",
    "-a -t 0.0.0.0:1 -r 255.255.255.255:65535 -m", "-A -t 198.18.0.1:80 -s abcdefghijklmnopqrstuvwxyz",
  ];
  for (const l of lines) {
    const argv = l.split(" ");
    const fast = fastLine(argv);
    assert.ok(fast, `taken: ${l}`);
    assert.is(JSON.stringify(fast), general(argv), l);
  }
});

shapes("anything else is left to parseArgs", () => {
  const lines = [
    "-A -t 198.18.0.1:0 -s rr", "-A -t 198.18.0.1 -s rr", "-A -t 198.18.00.1:80", "-A -t 198.18.1:80",
    "-A -t 0x1.2.3.4:80", "-A -t web1:80", "-A -t 198.18.0.1:http", "-A -t 198.18.0.1:80 -s rr -s wlc",
    "-A -t 198.18.0.1:80 -t 198.18.0.2:80", "-A -t 198.18.0.1:80 -u 198.18.0.2:80", "-A -t 198.18.0.1:80 -p",
    "-A -t 198.18.0.1:80 -p 0", "-A -t 198.18.0.1:80 -p -s rr", "-A -t 198.18.0.1:80 -s -m", "-A -f 1 -s rr",
    "-A -t 198.18.0.1:80 -r 198.19.0.1:80", "-A -t 198.18.0.1:80 -m", "-a -t 198.18.0.1:80 -s rr -r 198.19.0.1:80",
    "-a -t 198.18.0.1:80", "-a -r 198.19.0.1:80 -t 198.18.0.1:80", "-a -t 198.18.0.1:80 -r 198.19.0.1:80 -m -g",
    "-a -t 198.18.0.1:80 -r 198.19.0.1:80 -w 65536", "-a -t 198.18.0.1:80 -r 198.19.0.1:80 -w -1",
    "-a -t 198.18.0.1:80 -r 198.19.0.1:80 -x 2147483648", "-a -t 198.18.0.1:80 -r [2001:2::a]:80 -m",
    "-a -t 198.18.0.1:80 -r 198.19.0.1:80 --fullnat", "-a -t 198.18.0.1:80 -r 198.19.0.1:80 -mw 1",
    "-a -t [198.18.0.1]:80 -r 198.19.0.1:80", "-a -t [2001:2::1]80 -r [2001:2::a]:80", "-A -t 198.18.0.1:80 junk",
    "-L -n", "-C", "--set 1 2 3", "-D -t 198.18.0.1:80", "-A -t 198.18.0.1:80 -s rr -6", "-A -t 198.18.0.1.:80",
    "-A -t 198.18.0.1:123456", "-A -t 198.18.0.256:80", "-A -t .198.18.0:80", "-A -t 198..18.0:80",
  ];
  for (const l of lines) assert.is(fastLine(l.split(" ")), null, l);
});

const fuzz = suite("fastLine against parseArgs");

fuzz("on 20 000 seeded lines, whatever fastLine takes parseArgs turns into the same Command", () => {
  const addrs = ["198.18.0.1:80", "198.18.0.1:0", "198.19.0.7:8080", "198.19.0.7", "[2001:2::1]:80", "[2001:2::b]:8080",
    "web1:80", "198.18.0.1:http", "010.1.1.1:80", "-m", "[198.18.0.1]:80"];
  const nums = ["0", "1", "360", "65535", "65536", "2147483647", "2147483648", "-1", "+5", "07", "x"];
  const opts: [string, string[]][] = [["-t", addrs], ["-u", addrs], ["-r", addrs], ["-s", ["rr", "wlc", "-g"]], ["-p", nums],
    ["-w", nums], ["-x", nums], ["-y", nums], ["-m", []], ["-g", []], ["-i", []], ["-6", []], ["-o", []], ["--fullnat", []], ["junk", []]];
  let seed = 7;
  const rand = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
  let taken = 0;
  const cache = new FastLineCache();
  for (let k = 0; k < 20_000; k++) {
    const argv = [["-A", "-E", "-a", "-e"][rand(4)]];
    // Mostly near-valid lines: a service address, a real server, then anything.
    if (rand(10) > 0) argv.push(["-t", "-u"][rand(2)], addrs[rand(rand(2) ? 3 : addrs.length)]);
    if (argv[0].startsWith("-a") || argv[0].startsWith("-e") ? rand(10) > 0 : rand(10) === 0) argv.push("-r", addrs[rand(addrs.length)]);
    const n = rand(5);
    for (let i = 0; i < n; i++) {
      const [o, vals] = opts[rand(opts.length)];
      argv.push(o);
      if (vals.length > 0 && rand(20) > 0) argv.push(vals[rand(vals.length)]);
    }
    const fast = fastLine(argv);
    // With a cache shared by every line, as planRestore reads them: the same Commands.
    assert.is(JSON.stringify(fastLineText(argv.join(" "), cache)), JSON.stringify(fast), argv.join(" "));
    if (fast === null) continue;
    taken++;
    assert.is(JSON.stringify(fast), general(argv), argv.join(" "));
  }
  assert.ok(taken > 500, `only ${taken} lines taken`);
});

fuzz("names never matter to a line fastLine takes", () => {
  const argv = "-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m -w 1".split(" ");
  assert.equal(parseArgs(argv, NO_NAMES).kind, "apply");
  assert.equal(JSON.stringify(fastLine(argv)), general(argv));
});

shapes.run();
fuzz.run();
