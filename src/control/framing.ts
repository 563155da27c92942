// How a request or reply travels on the control socket: one JSON line, and, for the
// messages that carry a large text (the -R input, the -L and -S output), that text raw
// after the line, announced by `"body": <bytes>` in it. Escaping and unescaping a
// 7 MB listing inside JSON took a tenth of a second on each side; raw it is a copy.
// The text stands for the request's `text` field or the reply's `data`.

/** The wire bytes of `head` (a JSON object) and, when given, `text` as its body. */
export function encodeMessage(head: object, text?: string): Buffer {
  if (text === undefined) return Buffer.from(JSON.stringify(head) + "\n");
  const body = Buffer.from(text);
  const line = Buffer.from(JSON.stringify({ ...head, body: body.length }) + "\n");
  return Buffer.concat([line, body], line.length + body.length);
}

/**
 * A message from `buf`, whose first newline is at `lineEnd`: its JSON object (without
 * `body`) and its text, if it announced one; `missing` bytes while the body has not all
 * arrived; null when the line is not a JSON object or `body` is not a byte count.
 */
export function decodeMessage(buf: Buffer, lineEnd: number): { head: Record<string, unknown>; text?: string } | { missing: number } | null {
  let head: unknown;
  try {
    head = JSON.parse(buf.toString("utf8", 0, lineEnd));
  } catch {
    return null;
  }
  if (typeof head !== "object" || head === null || Array.isArray(head)) return null;
  const h = head as Record<string, unknown>;
  if (!("body" in h)) return { head: h };
  const n = h.body;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) return null;
  if (buf.length < lineEnd + 1 + n) return { missing: lineEnd + 1 + n - buf.length };
  delete h.body;
  return { head: h, text: buf.toString("utf8", lineEnd + 1, lineEnd + 1 + n) };
}
