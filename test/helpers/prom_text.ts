// Test helper: a strict reader of the Prometheus text exposition format (0.0.4), enough to
// prove that what /metrics serves parses: every sample belongs to a family with # TYPE
// (and # HELP) declared before it, names and label names are valid, label values use
// only the format's escapes, values are numbers; a family is never split or repeated.
export interface PromSample { labels: Record<string, string>; value: number }
export interface PromFamily { type: string; help: string; samples: PromSample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(text: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`bad labels: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name) || name in out) throw new Error(`bad label name '${name}': ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value: ${line}`);
    let v = "";
    let j = eq + 2;
    for (;; j++) {
      if (j >= text.length) throw new Error(`unterminated label value: ${line}`);
      const c = text[j];
      if (c === '"') break;
      if (c === "\n") throw new Error(`newline in label value: ${line}`);
      if (c === "\\") {
        const n = text[++j];
        if (n === "\\") v += "\\"; else if (n === '"') v += '"'; else if (n === "n") v += "\n";
        else throw new Error(`bad escape \\${n}: ${line}`);
      } else v += c;
    }
    out[name] = v;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (i < text.length) throw new Error(`expected ',' in labels: ${line}`);
  }
  return out;
}

export function parsePromText(text: string): Map<string, PromFamily> {
  const fams = new Map<string, PromFamily>();
  let current = "";
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      if (!NAME.test(name)) throw new Error(`bad metric name: ${line}`);
      let f = fams.get(name);
      if (f && name !== current) throw new Error(`family ${name} split or repeated`);
      if (!f) { f = { type: "", help: "", samples: [] }; fams.set(name, f); }
      current = name;
      if (kind === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) throw new Error(`bad type: ${line}`);
        if (f.samples.length) throw new Error(`TYPE after samples: ${line}`);
        f.type = rest;
      } else f.help = rest;
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const [, name, labels, value] = m;
    const f = fams.get(name);
    if (!f || !f.type || name !== current) throw new Error(`sample without its # TYPE just before: ${line}`);
    const v = value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value);
    if (value !== "NaN" && Number.isNaN(v)) throw new Error(`bad value: ${line}`);
    f.samples.push({ labels: labels ? parseLabels(labels, line) : {}, value: v });
  }
  return fams;
}
