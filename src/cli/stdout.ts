// Standard output for the CLI's listings. process.stdout.write into a pipe is
// asynchronous in Bun, and main() ends with process.exit(), which cut a large listing
// (-L of 100 000 servers) short after 64 KiB. Writes go out in order through Bun.write,
// and main() waits for flushStdout() before it exits.
let pending: Promise<unknown> = Promise.resolve();

export function writeOut(text: string): void {
  pending = pending.then(() => Bun.write(Bun.stdout, text)).catch(closedPipe);
}

/**
 * The reader went away (`tslb -L -n -c | head`): stop quietly, as ipvsadm does when
 * SIGPIPE ends it (a shell reports 128 + 13 for that).
 */
function closedPipe(e: unknown): never {
  if ((e as NodeJS.ErrnoException)?.code === "EPIPE") process.exit(141);
  throw e;
}

/** Resolves once everything given to writeOut() is written. */
export function flushStdout(): Promise<unknown> {
  return pending;
}
