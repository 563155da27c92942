import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseRestore } from "../../src/cli/rules_text.ts";
import { NO_NAMES } from "../../src/cli/names.ts";
import { applyAll } from "../../src/control/apply.ts";
import { IdPool, RuleIds } from "../../src/control/ids.ts";
import { emptyRuleSet, type RuleSet, serviceKeyText } from "../../src/control/model.ts";

const rules = (text: string, from: RuleSet = emptyRuleSet()) => applyAll(from, parseRestore(text, "ipvsadm", NO_NAMES), ["rr"]);
const ids = suite("RuleIds");

ids("ids in rule order, stable across syncs; what is gone loses its id", () => {
  const r = new RuleIds(() => false);
  const fresh: string[] = [];
  const a = rules("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1:80 -m\n-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m\n-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.1:53 -m\n");
  r.sync(a, (k, id) => fresh.push(`${k}${id}`));
  assert.equal([...r.svcIds], [1, 2]);
  assert.equal([...r.destStart], [0, 2, 3]);
  assert.equal([...r.destIds], [1, 2, 3], "in rule order: the newest destination first");
  assert.equal(fresh, ["svc1", "dest1", "dest2", "svc2", "dest3"]);
  const sk = serviceKeyText(a.services[0].key);
  assert.is(r.destId(RuleIds.destKey(sk, { addr: "198.19.0.2", port: 80 })), 1);
  assert.is(r.destId(RuleIds.destKey(serviceKeyText(a.services[1].key), { addr: "198.19.0.1", port: 53 })), 3);
  assert.is(r.destId(RuleIds.destKey(sk, { addr: "198.19.0.9", port: 80 })), undefined);
  // Remove the UDP service and one server, add two: new ids go on round the pool.
  fresh.length = 0;
  const b = rules("-D -u 198.18.0.1:53\n-d -t 198.18.0.1:80 -r 198.19.0.1:80\n-a -t 198.18.0.1:80 -r 198.19.0.3:80 -m\n-a -t 198.18.0.1:80 -r 198.19.0.4:80 -m\n", a);
  r.sync(b, (k, id) => fresh.push(`${k}${id}`));
  assert.equal([...r.svcIds], [1]);
  assert.equal([...r.destIds], [4, 5, 1], "the kept server keeps its id");
  assert.equal(fresh, ["dest4", "dest5"]);
  assert.is(r.destId(RuleIds.destKey(sk, { addr: "198.19.0.1", port: 80 })), undefined);
  r.sync(b, () => assert.unreachable("nothing new"));
  assert.equal([...r.destIds], [4, 5, 1]);
  r.sync(emptyRuleSet(), () => {});
  assert.equal([...r.destIds], []);
  assert.is(r.destId(RuleIds.destKey(sk, { addr: "198.19.0.2", port: 80 })), undefined);
});

ids("undo() takes a sync back whole: the gone get their ids again, the new lose theirs", () => {
  const r = new RuleIds(() => false);
  const a = rules("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1:80 -m\n-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m\n-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.1:53 -m\n");
  r.sync(a, () => {});
  r.keep();
  const before = [[...r.svcIds], [...r.destIds], [...r.destStart]];
  const key = (svc: number, addr: string, port: number) => RuleIds.destKey(serviceKeyText(a.services[svc].key), { addr, port });
  const b = rules("-D -u 198.18.0.1:53\n-d -t 198.18.0.1:80 -r 198.19.0.1:80\n-a -t 198.18.0.1:80 -r 198.19.0.3:80 -m\n-A -t 198.18.0.2:80 -s rr\n-a -t 198.18.0.2:80 -r 198.19.0.1:80 -m\n", a);
  r.sync(b, () => {});
  assert.is(r.destId(key(1, "198.19.0.1", 53)), undefined);
  r.undo();
  assert.equal([[...r.svcIds], [...r.destIds], [...r.destStart]], before);
  assert.equal([key(0, "198.19.0.2", 80), key(0, "198.19.0.1", 80), key(1, "198.19.0.1", 53)].map((k) => r.destId(k)), [1, 2, 3]);
  assert.is(r.destId(RuleIds.destKey("tcp/198.18.0.2/80", { addr: "198.19.0.1", port: 80 })), undefined);
  // Synced again, everything is as if the undone change never happened (ids go on round the pool).
  r.sync(a, () => assert.unreachable("nothing new"));
  assert.equal([...r.destIds], before[1]);
  r.sync(b, () => {});
  r.keep();
  r.undo();
  assert.is(r.destId(key(1, "198.19.0.1", 53)), undefined, "kept: no undo");
});

ids("IdPool: round robin over free ids; a freed id comes round again only once reusable; ENOMEM when none", () => {
  const busy = new Set<number>();
  const pool = new IdPool(4, (id) => !busy.has(id));
  const got = [pool.take(() => {}), pool.take(() => {}), pool.take(() => {})];
  assert.equal(got, [1, 2, 3]);
  pool.release(2);
  busy.add(2);
  assert.throws(() => pool.take(() => {}), (e: Error) => e.message === "Memory allocation problem");
  busy.delete(2);
  assert.is(pool.take(() => {}), 2);
});

ids.run();
