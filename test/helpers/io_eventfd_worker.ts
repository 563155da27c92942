// Worker for test/io/poller.ts: told an eventfd, waits a little, then signals it while
// the main thread is blocked in poll().
import { signalEventFd } from "../../src/io/poller.ts";

declare const self: Worker;
self.onmessage = (ev: MessageEvent<{ fd: number; delayMs: number }>) => {
  Bun.sleepSync(ev.data.delayMs);
  postMessage(signalEventFd(ev.data.fd));
};
postMessage("ready");
