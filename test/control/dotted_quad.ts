import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dottedQuad } from "../../src/control/dotted_quad.ts";
import { formatIPv4, parseIPv4 } from "../../src/wire/addr.ts";

const q = suite("dottedQuad: canonical IPv4 text only, read as parseIPv4 reads it");

q("every formatIPv4 text, and nothing else parseIPv4 takes", () => {
  let seed = 3;
  const rand = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; };
  for (let k = 0; k < 20_000; k++) {
    const a = (rand() ^ (rand() << 16)) | 0;
    assert.is(dottedQuad(formatIPv4(a)), a);
  }
  for (const t of ["0.0.0.0", "255.255.255.255", "198.18.0.1"]) assert.is(dottedQuad(t), parseIPv4(t));
  for (const t of ["", "1.2.3", "1.2.3.4.", ".1.2.3", "01.2.3.4", "1.2.3.04", "1.2.3.256", "1.2.3.4 ", "0x1.2.3.4", "1.2..3", "1234.1.1.1", "2001:2::1", "a.b.c.d"]) {
    assert.is(dottedQuad(t), null, t);
  }
  assert.is(dottedQuad("198.18.0.1:80", 10), parseIPv4("198.18.0.1"));
  assert.is(dottedQuad("198.18.0.1:80", 9), null);
});

q.run();
