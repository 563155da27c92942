// Netlink wire format: messages built byte for byte against the uapi layouts, and replies
// parsed from fixed bytes. Netlink integers are host order: these fixtures are
// little-endian (x86_64, aarch64), the only hosts tslb runs on.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  FRA_IIFNAME, FRA_IP_PROTO, FRA_PRIORITY, FRA_SPORT_RANGE, FRA_SRC, FRA_TABLE, FR_ACT_TO_TBL, IFF_UP,
  IFLA_IFNAME, IFLA_MTU, NDA_DST, NLMSG_ERROR, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
  NTF_PROXY, NUD_PERMANENT, NlBuilder, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PREFSRC, RTA_TABLE, RTMSG_LEN,
  RTM_GETLINK, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, RTM_NEWRULE, RTN_UNICAST, RTPROT_STATIC,
  RT_SCOPE_LINK, nlErrorCode, nlErrorText, nlParse, rtaFind, rtaLen, rtaU32, rtmsgRead,
} from "../../src/wire/netlink.ts";

const NEW = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL; // 0x605

/** A buffer poisoned with 0xa5, so that unwritten padding shows up (smoltcp). */
const poisoned = (n = 256) => new Uint8Array(n).fill(0xa5);
const hex = (u8: Uint8Array) => [...u8].map((b) => b.toString(16).padStart(2, "0")).join(" ");
const bytes = (...rows: number[][]) => new Uint8Array(rows.flat());

const build = suite("netlink build");

build("RTM_NEWROUTE 198.18.21.0/24 dev #3 table 4242", () => {
  const buf = poisoned();
  const len = new NlBuilder(buf).begin(RTM_NEWROUTE, NEW, 7)
    .rtmsg({ family: 2, dstLen: 24, table: 0, protocol: RTPROT_STATIC, scope: RT_SCOPE_LINK, type: RTN_UNICAST })
    .attr(RTA_DST, new Uint8Array([198, 18, 21, 0]))
    .attrU32(RTA_TABLE, 4242)
    .attrU32(RTA_OIF, 3)
    .end();
  const want = bytes(
    [0x34, 0, 0, 0], //       nlmsg_len 52
    [0x18, 0], //             nlmsg_type RTM_NEWROUTE (24)
    [0x05, 0x06], //          nlmsg_flags REQUEST|ACK|EXCL|CREATE (0x605)
    [7, 0, 0, 0], //          nlmsg_seq 7
    [0, 0, 0, 0], //          nlmsg_pid 0 (the kernel fills it in)
    [2], //                   rtm_family AF_INET
    [24], //                  rtm_dst_len
    [0], //                   rtm_src_len
    [0], //                   rtm_tos
    [0], //                   rtm_table RT_TABLE_UNSPEC: 4242 does not fit, see RTA_TABLE
    [4], //                   rtm_protocol RTPROT_STATIC
    [253], //                 rtm_scope RT_SCOPE_LINK
    [1], //                   rtm_type RTN_UNICAST
    [0, 0, 0, 0], //          rtm_flags
    [8, 0, 1, 0], //          rta_len 8, RTA_DST
    [198, 18, 21, 0], //      198.18.21.0 (network order)
    [8, 0, 15, 0], //         rta_len 8, RTA_TABLE
    [0x92, 0x10, 0, 0], //    4242 (u32 host order)
    [8, 0, 4, 0], //          rta_len 8, RTA_OIF
    [3, 0, 0, 0], //          ifindex 3
  );
  assert.is(len, 52);
  assert.is(hex(buf.subarray(0, len)), hex(want));
});

build("RTM_NEWRULE from 198.18.1.11 ipproto tcp sport 80 lookup 4242 pref 1000", () => {
  const buf = poisoned();
  const len = new NlBuilder(buf).begin(RTM_NEWRULE, NEW, 8)
    .fibRuleHdr({ family: 2, srcLen: 32, table: 0, action: FR_ACT_TO_TBL })
    .attrU32(FRA_PRIORITY, 1000)
    .attrU32(FRA_TABLE, 4242)
    .attr(FRA_SRC, new Uint8Array([198, 18, 1, 11]))
    .attrU8(FRA_IP_PROTO, 6)
    .attrPortRange(FRA_SPORT_RANGE, 80, 80)
    .end();
  const want = bytes(
    [0x44, 0, 0, 0], //       nlmsg_len 68
    [0x20, 0], //             RTM_NEWRULE (32)
    [0x05, 0x06], //          REQUEST|ACK|EXCL|CREATE
    [8, 0, 0, 0], //          seq 8
    [0, 0, 0, 0], //          pid
    [2, 0, 32, 0], //         family AF_INET, dst_len 0, src_len 32, tos 0
    [0, 0, 0, 1], //          table UNSPEC, res1, res2, action FR_ACT_TO_TBL
    [0, 0, 0, 0], //          flags
    [8, 0, 6, 0], //          FRA_PRIORITY
    [0xe8, 0x03, 0, 0], //    1000
    [8, 0, 15, 0], //         FRA_TABLE
    [0x92, 0x10, 0, 0], //    4242
    [8, 0, 2, 0], //          FRA_SRC
    [198, 18, 1, 11], //      198.18.1.11
    [5, 0, 22, 0], //         rta_len 5 (header + 1 byte), FRA_IP_PROTO
    [6, 0, 0, 0], //          IPPROTO_TCP, then 3 zero pad bytes
    [8, 0, 23, 0], //         FRA_SPORT_RANGE
    [80, 0, 80, 0], //        fib_rule_port_range { start 80, end 80 } (host order)
  );
  assert.is(len, 68);
  assert.is(hex(buf.subarray(0, len)), hex(want));
});

build("RTM_NEWRULE iif tslb0 lookup main pref 1001 (string attribute, padded)", () => {
  const buf = poisoned();
  const len = new NlBuilder(buf).begin(RTM_NEWRULE, NEW, 9)
    .fibRuleHdr({ family: 2, table: 254, action: FR_ACT_TO_TBL })
    .attrU32(FRA_PRIORITY, 1001)
    .attrStr(FRA_IIFNAME, "tslb0")
    .end();
  const want = bytes(
    [0x30, 0, 0, 0, 0x20, 0, 0x05, 0x06, 9, 0, 0, 0, 0, 0, 0, 0], // nlmsghdr: len 48, RTM_NEWRULE, seq 9
    [2, 0, 0, 0], //          AF_INET, no prefixes, tos 0
    [254, 0, 0, 1], //        table main (fits in the u8), FR_ACT_TO_TBL
    [0, 0, 0, 0], //          flags
    [8, 0, 6, 0, 0xe9, 0x03, 0, 0], // FRA_PRIORITY 1001
    [10, 0, 3, 0], //         rta_len 10 (4 + "tslb0\0"), FRA_IIFNAME
    [0x74, 0x73, 0x6c, 0x62, 0x30, 0], // "tslb0" NUL
    [0, 0], //                pad to 4
  );
  assert.is(len, 48);
  assert.is(hex(buf.subarray(0, len)), hex(want));
});

build("RTM_NEWNEIGH proxy 2001:2:0:5::77 dev #5", () => {
  const buf = poisoned();
  const len = new NlBuilder(buf).begin(RTM_NEWNEIGH, NEW, 10)
    .ndmsg({ family: 10, ifindex: 5, state: NUD_PERMANENT, flags: NTF_PROXY })
    .attr(NDA_DST, new Uint8Array([0x20, 1, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x77]))
    .end();
  const want = bytes(
    [0x30, 0, 0, 0, 0x1c, 0, 0x05, 0x06, 10, 0, 0, 0, 0, 0, 0, 0], // len 48, RTM_NEWNEIGH (28), seq 10
    [10, 0, 0, 0], //         ndm_family AF_INET6, ndm_pad1, ndm_pad2
    [5, 0, 0, 0], //          ndm_ifindex 5
    [0x80, 0], //             ndm_state NUD_PERMANENT
    [0x08], //                ndm_flags NTF_PROXY
    [0], //                   ndm_type
    [20, 0, 1, 0], //         rta_len 20, NDA_DST
    [0x20, 1, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x77],
  );
  assert.is(len, 48);
  assert.is(hex(buf.subarray(0, len)), hex(want));
});

build("RTM_NEWLINK #7 up, mtu 1400; RTM_GETLINK lo", () => {
  const buf = poisoned();
  const b = new NlBuilder(buf);
  let len = b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1)
    .ifinfomsg({ index: 7, flags: IFF_UP, change: IFF_UP }).attrU32(IFLA_MTU, 1400).end();
  assert.is(hex(buf.subarray(0, len)), hex(bytes(
    [0x28, 0, 0, 0, 0x10, 0, 0x05, 0, 1, 0, 0, 0, 0, 0, 0, 0], // len 40, RTM_NEWLINK, REQUEST|ACK, seq 1
    [0, 0, 0, 0], //          ifi_family AF_UNSPEC, __ifi_pad, ifi_type 0
    [7, 0, 0, 0], //          ifi_index 7
    [1, 0, 0, 0], //          ifi_flags IFF_UP
    [1, 0, 0, 0], //          ifi_change IFF_UP
    [8, 0, 4, 0, 0x78, 0x05, 0, 0], // IFLA_MTU 1400
  )));
  buf.fill(0xa5);
  len = b.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 2).ifinfomsg({ index: 0 }).attrStr(IFLA_IFNAME, "lo").end();
  assert.is(hex(buf.subarray(0, len)), hex(bytes(
    [0x28, 0, 0, 0, 0x12, 0, 0x05, 0, 2, 0, 0, 0, 0, 0, 0, 0], // len 40, RTM_GETLINK (18), seq 2
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // ifinfomsg, index 0: look up by name
    [7, 0, 3, 0, 0x6c, 0x6f, 0, 0], // rta_len 7, IFLA_IFNAME "lo" NUL, 1 pad byte
  )));
});

build("a message larger than the buffer throws RangeError", () => {
  const b = new NlBuilder(new Uint8Array(32)).begin(RTM_NEWROUTE, NEW, 1).rtmsg({ family: 2 });
  assert.throws(() => b.attrU32(RTA_OIF, 1), RangeError);
});

// ---

// One recv() worth of replies: a route (answer to RTM_GETROUTE), its ACK, and an EEXIST
// error carrying an extended-ack message.
const REPLY = bytes(
  // [0] RTM_NEWROUTE, 60 bytes
  [0x3c, 0, 0, 0, 0x18, 0, 0, 0, 9, 0, 0, 0, 0xd2, 0x04, 0, 0], // len 60, RTM_NEWROUTE, flags 0, seq 9, pid 1234
  [2, 32, 0, 0], //           AF_INET, dst_len 32, src_len 0, tos 0
  [254, 0, 0, 1], //          table main, protocol 0, scope universe, RTN_UNICAST
  [0, 2, 0, 0], //            rtm_flags RTM_F_CLONED (0x200)
  [8, 0, 15, 0, 254, 0, 0, 0], //     RTA_TABLE 254
  [8, 0, 1, 0, 198, 18, 5, 2], //     RTA_DST 198.18.5.2
  [8, 0, 4, 0, 2, 0, 0, 0], //        RTA_OIF 2
  [8, 0, 7, 0, 198, 18, 5, 1], //     RTA_PREFSRC 198.18.5.1
  // [60] NLMSG_ERROR, error 0 = ACK, 36 bytes
  [0x24, 0, 0, 0, 2, 0, 0, 1, 9, 0, 0, 0, 0xd2, 0x04, 0, 0], // len 36, NLMSG_ERROR, NLM_F_CAPPED, seq 9
  [0, 0, 0, 0], //            error 0
  [0x24, 0, 0, 0, 0x1a, 0, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0], // the request's header (RTM_GETROUTE)
  // [96] NLMSG_ERROR -EEXIST with NLMSGERR_ATTR_MSG, 68 bytes
  [0x44, 0, 0, 0, 2, 0, 0, 3, 10, 0, 0, 0, 0xd2, 0x04, 0, 0], // len 68, NLMSG_ERROR, CAPPED|ACK_TLVS, seq 10
  [0xef, 0xff, 0xff, 0xff], //  error -17
  [0x34, 0, 0, 0, 0x18, 0, 0x05, 0x06, 10, 0, 0, 0, 0, 0, 0, 0], // request header only (capped)
  [32, 0, 1, 0], //           rta_len 32, NLMSGERR_ATTR_MSG
  [...new TextEncoder().encode("Nexthop has invalid gateway"), 0], // 27 chars + NUL
);

// An uncapped error: the whole request is echoed before the TLVs.
const UNCAPPED = bytes(
  [0x34, 0, 0, 0, 2, 0, 0, 2, 11, 0, 0, 0, 0, 0, 0, 0], // len 52, NLMSG_ERROR, ACK_TLVS, seq 11
  [0xea, 0xff, 0xff, 0xff], //  error -22
  [0x18, 0, 0, 0, 0x20, 0, 0x05, 0x06, 11, 0, 0, 0, 0, 0, 0, 0], // request header, len 24
  [0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa], // its 8-byte payload
  [8, 0, 1, 0, 0x62, 0x61, 0x64, 0], // NLMSGERR_ATTR_MSG "bad"
);

const parse = suite("netlink parse");

parse("splits a reply buffer into messages", () => {
  const msgs = nlParse(REPLY, REPLY.length);
  assert.equal(msgs, [
    { type: RTM_NEWROUTE, flags: 0, seq: 9, pid: 1234, off: 0, len: 60 },
    { type: NLMSG_ERROR, flags: 0x100, seq: 9, pid: 1234, off: 60, len: 36 },
    { type: NLMSG_ERROR, flags: 0x300, seq: 10, pid: 1234, off: 96, len: 68 },
  ]);
  assert.equal(nlParse(REPLY, 60).length, 1, "parses only the received length");
});

parse("route reply: rtmsg and attributes", () => {
  const [route] = nlParse(REPLY, REPLY.length);
  assert.equal(rtmsgRead(REPLY, 16), {
    family: 2, dstLen: 32, srcLen: 0, tos: 0, table: 254, protocol: 0, scope: 0, type: 1, flags: 0x200,
  });
  const start = route.off + 16 + RTMSG_LEN;
  const end = route.off + route.len;
  const p = rtaFind(REPLY, start, end, RTA_PREFSRC);
  assert.is(p, 56);
  assert.is(rtaLen(REPLY, p), 4);
  assert.equal([...REPLY.subarray(p, p + 4)], [198, 18, 5, 1]);
  assert.is(rtaU32(REPLY, rtaFind(REPLY, start, end, RTA_OIF)), 2);
  assert.is(rtaFind(REPLY, start, end, RTA_DST), 40);
  assert.is(rtaFind(REPLY, start, end, RTA_GATEWAY), -1, "absent");
});

parse("errors: ACK, -errno, extended-ack text (capped and uncapped)", () => {
  const [, ack, exists] = nlParse(REPLY, REPLY.length);
  assert.is(nlErrorCode(REPLY, ack), 0);
  assert.is(nlErrorText(REPLY, ack), "");
  assert.is(nlErrorCode(REPLY, exists), -17);
  assert.is(nlErrorText(REPLY, exists), "Nexthop has invalid gateway");
  const [bad] = nlParse(UNCAPPED, UNCAPPED.length);
  assert.is(nlErrorCode(UNCAPPED, bad), -22);
  assert.is(nlErrorText(UNCAPPED, bad), "bad");
  assert.throws(() => nlErrorCode(REPLY, nlParse(REPLY, 60)[0]), RangeError, "not an NLMSG_ERROR");
});

parse("a length past the end of the buffer throws RangeError", () => {
  const broken = REPLY.slice(0, 120); // the third message cut short
  assert.throws(() => nlParse(broken, broken.length), /bad nlmsg_len 68 at offset 96/);
  const tiny = bytes([8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => nlParse(tiny, tiny.length), RangeError, "nlmsg_len below the header size");
});

build.run();
parse.run();
