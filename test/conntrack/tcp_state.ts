import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  S_CLOSE, S_CLOSE_WAIT, S_ESTABLISHED, S_FIN_WAIT, S_NONE, S_SYN_RECV, S_TIME_WAIT, STATE_NAMES,
  TABLE_INPUT, TABLE_INPUT_ONLY, TABLE_OUTPUT, tcpEvent, tcpNextState,
} from "../../src/conntrack/tcp_state.ts";

const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;
const IN = TABLE_INPUT, OUT = TABLE_OUTPUT, ONLY = TABLE_INPUT_ONLY;

function walk(steps: [number, number][]): string[] {
  let s = S_NONE;
  return steps.map(([table, flags]) => STATE_NAMES[(s = tcpNextState(table, s, flags))]);
}

const t = suite("IPVS TCP state machine");
t("event index: RST beats SYN beats FIN beats ACK", () => {
  assert.is(tcpEvent(RST | SYN), 3);
  assert.is(tcpEvent(SYN | ACK), 0);
  assert.is(tcpEvent(FIN | ACK), 1);
  assert.is(tcpEvent(ACK), 2);
  assert.is(tcpEvent(0), -1);
});
t("NAT walk (reference §4.3): SR, SR, ES, CW, TW, TW", () => {
  assert.equal(walk([[IN, SYN], [OUT, SYN | ACK], [IN, ACK], [IN, FIN | ACK], [OUT, FIN | ACK], [IN, ACK]]),
    ["SYN_RECV", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "TIME_WAIT", "TIME_WAIT"]);
});
t("DR walk: SR, ES, FW, FW, CL on RST", () => {
  assert.equal(walk([[ONLY, SYN], [ONLY, ACK], [ONLY, FIN | ACK], [ONLY, ACK], [ONLY, RST]]),
    ["SYN_RECV", "ESTABLISHED", "FIN_WAIT", "FIN_WAIT", "CLOSE"]);
});
t("no flags at all closes; modern kernels take ack in NONE to ESTABLISHED", () => {
  assert.is(tcpNextState(IN, S_ESTABLISHED, 0), S_CLOSE);
  assert.is(tcpNextState(IN, S_NONE, ACK), S_ESTABLISHED);
  assert.is(tcpNextState(ONLY, S_NONE, ACK), S_ESTABLISHED);
});
t("spot checks of each table", () => {
  assert.is(tcpNextState(IN, S_SYN_RECV, RST), S_SYN_RECV);
  assert.is(tcpNextState(OUT, S_ESTABLISHED, FIN), S_FIN_WAIT);
  assert.is(tcpNextState(OUT, S_CLOSE_WAIT, FIN), S_TIME_WAIT);
  assert.is(tcpNextState(IN, S_FIN_WAIT, ACK), S_FIN_WAIT);
  assert.is(tcpNextState(ONLY, S_TIME_WAIT, SYN), S_SYN_RECV);
});
t.run();
