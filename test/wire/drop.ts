import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DROP, DROP_COUNT, DROP_NAMES } from "../../src/wire/drop.ts";

const d = suite("drop reasons");
d("every reason has a unique number that indexes its name", () => {
  const values = Object.values(DROP);
  assert.is(new Set(values).size, values.length, "duplicate numbers");
  assert.is(DROP_COUNT, values.length);
  for (const [k, v] of Object.entries(DROP)) assert.is(DROP_NAMES[v], k.toLowerCase(), k);
});
d.run();
