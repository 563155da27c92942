// SCHEDULERS: the one registration point. One line per scheduler, no import-time side
// effects, so `bun build --compile` can never lose one.
import { lc } from "./lc.ts";
import { rr } from "./rr.ts";
import type { SchedulerFactory } from "./scheduler.ts";
import { wlc } from "./wlc.ts";
import { wrr } from "./wrr.ts";

export const SCHEDULERS: Readonly<Record<string, SchedulerFactory>> = { rr, wrr, lc, wlc };
export const SCHEDULER_NAMES: readonly string[] = Object.keys(SCHEDULERS);
