// The XDP hand-off's steal-map keys (control/xdp_keys.ts): exactly the TCP/UDP services
// (IPv4 or IPv6) whose destinations are all masqueraded, fully NATed or routed directly
// within the service's family, and their NAT real servers' ports.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import { emptyRuleSet } from "../../src/control/model.ts";
import { stealKeys } from "../../src/control/xdp_keys.ts";
import { stealKey, stealKey6 } from "../../src/io/xdp.ts";
import { parseIPv6 } from "../../src/wire/addr.ts";
import { daemonArgs, splitGlobalOptions } from "../../src/control/options.ts";

const rules = (lines: string[]) => applyAll(emptyRuleSet(), parseRestore(lines.join("\n"), "ipvsadm", NO_NAMES), ["rr", "wrr"]);
const keys = (lines: string[]) => [...stealKeys(rules(lines)).keys()].sort();

const s = suite("XDP steal keys");

s("a NAT service: its VIP and port, and each real server's address and port, per protocol", () => {
  assert.equal(keys([
    "-A -t 198.18.0.100:80 -s rr", "-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m", "-a -t 198.18.0.100:80 -r 198.18.1.12:8080 -m",
    "-A -u 198.18.0.100:53 -s wrr", "-a -u 198.18.0.100:53 -r 198.18.1.11:5353 -m",
  ]), [
    "198.18.0.100.0.53.17.0", "198.18.0.100.0.80.6.0",
    "198.18.1.11.20.233.17.1", "198.18.1.11.31.144.6.1", "198.18.1.12.31.144.6.1",
  ]);
});

s("a DR service: its VIP and port, as destination and as the source of replies to forward; mixed with NAT, the NAT servers' ports too", () => {
  assert.equal(keys([
    "-A -t 198.18.0.101:80 -s rr", "-a -t 198.18.0.101:80 -r 198.18.1.11:80 -g", "-a -t 198.18.0.101:80 -r 198.18.1.12:80 -g",
    "-A -t 198.18.0.104:80 -s rr", "-a -t 198.18.0.104:80 -r 198.18.1.11:80 -m", "-a -t 198.18.0.104:80 -r 198.18.1.12:80 -g",
  ]), ["198.18.0.101.0.80.6.0", "198.18.0.101.0.80.6.2", "198.18.0.104.0.80.6.0", "198.18.0.104.0.80.6.2", "198.18.1.11.0.80.6.1"]);
});

s("IPv6: a NAT service's VIP and port and its servers' addresses and ports, in 20-byte keys; DR the VIP both ways", () => {
  const k6 = (a: string, port: number, proto: number, dir: number) => stealKey6(parseIPv6(a)!, port, proto, dir).join(".");
  assert.equal(keys([
    "-A -t [2001:2::100]:80 -s rr", "-a -t [2001:2::100]:80 -r [2001:2:0:1::11]:8080 -m",
    "-A -u [2001:2::102]:53 -s rr", "-a -u [2001:2::102]:53 -r [2001:2:0:1::12]:53 -g",
  ]), [k6("2001:2::100", 80, 6, 0), k6("2001:2::102", 53, 17, 0), k6("2001:2::102", 53, 17, 2), k6("2001:2:0:1::11", 8080, 6, 1)].sort());
  assert.equal([...stealKey6(parseIPv6("2001:2::1")!, 8080, 6, 1)], [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90, 6, 1]);
});

s("full NAT: its VIP and port, and its servers' addresses and ports (their replies come back to tslb)", () => {
  assert.equal(keys([
    "-A -t 198.18.0.103:80 -s rr", "-a -t 198.18.0.103:80 -r 198.18.1.11:80 --fullnat", "-a -t 198.18.0.103:80 -r 198.18.1.12:80 -m",
  ]), ["198.18.0.103.0.80.6.0", "198.18.1.11.0.80.6.1", "198.18.1.12.0.80.6.1"]);
});

s("everything else keeps the TUN path: tunnels, NAT64, a tunnelled server among others, fwmark, port 0, PROXY header, no servers", () => {
  assert.equal(keys([
    "-A -t 198.18.0.102:80 -s rr", "-a -t 198.18.0.102:80 -r 198.18.1.11:80 -i",
    "-A -t 198.18.0.104:80 -s rr", "-a -t 198.18.0.104:80 -r 198.18.1.11:80 -m", "-a -t 198.18.0.104:80 -r 198.18.1.12:80 -i",
    "-A -t [2001:2::101]:80 -s rr", "-a -t [2001:2::101]:80 -r 198.18.1.11:80 --fullnat",
    "-A -f 7 -s rr", "-a -f 7 -r 198.18.1.11:80 -m",
    "-A -t 198.18.0.105:0 -s rr -p", "-a -t 198.18.0.105:0 -r 198.18.1.11:0 -m",
    "-A -t 198.18.0.106:80 -s rr --proxy-protocol v1", "-a -t 198.18.0.106:80 -r 198.18.1.11:80 -m",
    "-A -t 198.18.0.107:80 -s rr",
  ]), []);
});

s("a key is address, port (network order), protocol and direction", () => {
  assert.equal([...stealKey(0xc6120064 | 0, 80, 6, 0)], [198, 18, 0, 100, 0, 80, 6, 0]);
  assert.equal([...stealKey(0xc612010b | 0, 8080, 17, 1)], [198, 18, 1, 11, 0x1f, 0x90, 17, 1]);
  assert.equal([...stealKey(0xc6120064 | 0, 80, 6, 2)], [198, 18, 0, 100, 0, 80, 6, 2]);
});

s("--xdp, --xdp-mode and --xdp-forward: parsed, checked, passed on to an auto-started daemon", () => {
  assert.equal(splitGlobalOptions([], {}).opts.xdp, []);
  const o = splitGlobalOptions(["--xdp", "eth0,br-port1", "-L"], {}).opts;
  assert.equal([o.xdp, o.xdpMode], [["eth0", "br-port1"], "generic"]);
  assert.equal(splitGlobalOptions([], { TSLB_XDP: "lbc", TSLB_XDP_MODE: "native" }).opts.xdpMode, "native");
  assert.equal(splitGlobalOptions(["--xdp", "off"], { TSLB_XDP: "lbc" }).opts.xdp, []);
  assert.throws(() => splitGlobalOptions(["--xdp", "eth0,,eth1"], {}), /--xdp wants interface names separated by commas/);
  assert.throws(() => splitGlobalOptions(["--xdp", "a-name-too-long-for-linux"], {}), /--xdp wants interface names/);
  assert.throws(() => splitGlobalOptions(["--xdp", "eth0,eth0"], {}), /--xdp names an interface twice/);
  assert.throws(() => splitGlobalOptions(["--xdp-mode", "offload"], {}), /--xdp-mode wants generic or native/);
  assert.is(o.xdpForward, true);
  assert.is(splitGlobalOptions(["--xdp-forward", "off"], {}).opts.xdpForward, false);
  assert.is(splitGlobalOptions([], { TSLB_XDP_FORWARD: "off" }).opts.xdpForward, false);
  assert.throws(() => splitGlobalOptions(["--xdp-forward", "yes"], {}), /--xdp-forward wants on or off, not 'yes'/);
  const a = daemonArgs(o);
  assert.equal(a.slice(a.indexOf("--xdp"), a.indexOf("--xdp") + 6), ["--xdp", "eth0,br-port1", "--xdp-mode", "generic", "--xdp-forward", "on"]);
  assert.not.ok(daemonArgs(splitGlobalOptions([], {}).opts).includes("--xdp"));
});

s.run();
