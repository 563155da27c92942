// Standard output for the CLI's listings. process.stdout.write into a pipe is
// asynchronous in Bun, and main() ends with process.exit(), which cut a large listing
// (-L of 100 000 servers) short after 64 KiB. Writes go out in order through Bun.write,
// and main() waits for flushStdout() before it exits.
let pending: Promise<unknown> = Promise.resolve();

export function writeOut(text: string): void {
  pending = pending.then(() => Bun.write(Bun.stdout, text));
}

/** Resolves once everything given to writeOut() is written. */
export function flushStdout(): Promise<unknown> {
  return pending;
}
