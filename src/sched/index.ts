// SCHEDULERS: the one registration point. One line per scheduler, no import-time side
// effects, so `bun build --compile` can never lose one.
import { dh } from "./dh.ts";
import { fo } from "./fo.ts";
import { lblc } from "./lblc.ts";
import { lblcr } from "./lblcr.ts";
import { lc } from "./lc.ts";
import { mh } from "./mh.ts";
import { nq } from "./nq.ts";
import { ovf } from "./ovf.ts";
import { rr } from "./rr.ts";
import type { SchedulerFactory } from "./scheduler.ts";
import { sed } from "./sed.ts";
import { sh } from "./sh.ts";
import { twos } from "./twos.ts";
import { wlc } from "./wlc.ts";
import { wrr } from "./wrr.ts";

export const SCHEDULERS: Readonly<Record<string, SchedulerFactory>> = {
  rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos,
};
export const SCHEDULER_NAMES: readonly string[] = Object.keys(SCHEDULERS);
