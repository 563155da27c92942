import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeMessage, encodeMessage } from "../../src/control/framing.ts";

const f = suite("control socket framing");
const decode = (b: Buffer) => decodeMessage(b, b.indexOf(10));

f("a plain message is one JSON line", () => {
  const b = encodeMessage({ op: "rules" });
  assert.is(b.toString(), '{"op":"rules"}\n');
  assert.equal(decode(b), { head: { op: "rules" } });
});

f("a text travels raw after its line, multi-byte characters and newlines included", () => {
  const text = "-A -t 198.18.0.1:80 -s rr\n# é ü ✓\n";
  const b = encodeMessage({ op: "restore", prog: "tslb" }, text);
  assert.is(b.toString().split("\n")[0], `{"op":"restore","prog":"tslb","body":${Buffer.byteLength(text)}}`);
  assert.equal(decode(b), { head: { op: "restore", prog: "tslb" }, text });
  assert.equal(decode(encodeMessage({ ok: true }, "")), { head: { ok: true }, text: "" });
});

f("a body not all there says how much is missing; bad lines are null", () => {
  const b = encodeMessage({ ok: true }, "0123456789");
  assert.equal(decode(b.subarray(0, b.length - 4)), { missing: 4 });
  for (const bad of ['{"ok":true,"body":-1}\n', '{"ok":true,"body":"3"}\n', '{"ok":true,"body":1.5}\n', "[1]\n", "nope\n", "null\n"]) {
    assert.is(decode(Buffer.from(bad)), null, bad);
  }
});

f.run();
