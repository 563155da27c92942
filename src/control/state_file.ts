// The state file (--state FILE): the rules in `-S -n` form, written after every change
// and loaded at start, so a daemon that died (even by kill -9) comes back with the same
// rules. Written atomically: a temporary file beside it, fsync, rename over the old one,
// fsync of the directory; a reader sees the old file or the new one, never a mix. It is
// -R input (comments allowed), so people can read it, diff it and restore it by hand.
// Unlike ipvsadm -S it keeps thresholds and non-default timeouts (see formatSave `full`).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { formatSave } from "../cli/rules_text.ts";
import { NO_NAMES } from "../cli/names.ts";
import type { RuleSet } from "./model.ts";

/** The state file's text for `rules`. */
export function stateText(rules: RuleSet): string {
  return `# tslb state: the running rules (tslb -R reads this file); written by the daemon, do not edit while it runs\n` +
    formatSave(rules, true, NO_NAMES, true);
}

/** Writes `text` to `path` atomically and durably (temp file + fsync + rename + directory fsync). */
export function writeAtomic(path: string, text: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, "w", 0o600);
  try {
    const bytes = Buffer.from(text);
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dfd = openSync(dir, "r");
  try { fsyncSync(dfd); } finally { closeSync(dfd); }
}

/** The file's text, or null when it does not exist. */
export function readIfExists(path: string): string | null {
  return existsSync(path) ? readFileSync(path, "utf8") : null;
}
