// tunnat: the project's own minimal C TUN NAT forwarder, the TUN-path limit that
// bench/e2e.ts compares tslb NAT with. Same rewrite as tslb NAT (-m): a packet to the VIP
// gets rs1 or rs2 as destination (round robin per new 5-tuple), a packet from rs1/rs2
// gets the VIP as source; IPv4 header and TCP/UDP checksums are updated incrementally
// (RFC 1624 eqn. 3). One TUN queue, blocking read/write, one reused buffer: nothing a
// real balancer needs beyond that (no timeouts, no states), so it is a floor for the
// cost of the TUN round trip, not a competitor.
//
//   tunnat IFNAME VIP RS1 RS2 [VNET 0|1]
//
// The device must exist (ip tuntap add dev IFNAME mode tun [vnet_hdr]). VNET=1 attaches
// with IFF_VNET_HDR and enables TUNSETOFFLOAD(CSUM|TSO4|TSO6): the kernel then hands over
// GSO super-packets (up to 64 KB) and packets whose L4 checksum is partial. The 10-byte
// virtio_net_hdr is written back unchanged; a super-packet is NATed as one packet. With
// VIRTIO_NET_HDR_F_NEEDS_CSUM the L4 checksum field holds the folded, uncomplemented
// pseudo-header sum, so it is updated as fold(sum + ~old + new) with no complement (the
// kernel's inet_proto_csum_replace4 for CHECKSUM_PARTIAL); ports are not part of it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BUF_LEN (65536 + 64)
#define TABLE_BITS 20
#define TABLE_SIZE (1u << TABLE_BITS)
#define TABLE_MAX (TABLE_SIZE / 4 * 3)

// One flow: the client side of the 5-tuple (the VIP is fixed) and the chosen server.
struct flow {
  uint32_t saddr;
  uint32_t ports; // sport << 16 | dport, network order halves
  uint8_t proto;
  uint8_t used;
  uint8_t rs;
};

static struct flow *table;
static unsigned table_count;
static unsigned next_rs;

// One's complement add with end-around carry, on raw (network order) 32-bit words:
// the sum is byte-order neutral as long as every operand is in the same order.
static inline uint32_t add32(uint32_t sum, uint32_t v) {
  sum += v;
  return sum + (sum < v);
}

static inline uint16_t fold(uint32_t s) {
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

// RFC 1624 eqn. 3 for a 32-bit field: HC' = ~(~HC + ~m + m').
static inline void csum_replace4(uint8_t *field, uint32_t from, uint32_t to) {
  uint16_t hc;
  memcpy(&hc, field, 2);
  uint32_t s = add32(add32((uint16_t)~hc, ~from), to);
  hc = (uint16_t)~fold(s);
  memcpy(field, &hc, 2);
}

// A partial (CHECKSUM_PARTIAL) checksum field holds the uncomplemented pseudo-header sum.
static inline void csum_partial_replace4(uint8_t *field, uint32_t from, uint32_t to) {
  uint16_t hc;
  memcpy(&hc, field, 2);
  uint32_t s = add32(add32(hc, ~from), to);
  hc = fold(s);
  memcpy(field, &hc, 2);
}

static inline uint32_t hash(uint32_t saddr, uint32_t ports, uint8_t proto) {
  uint64_t h = ((uint64_t)saddr << 32 | ports) ^ ((uint64_t)proto << 56);
  h *= 0x9e3779b97f4a7c15ull;
  return (uint32_t)(h >> (64 - TABLE_BITS));
}

// The server of a flow, chosen round robin the first time the flow is seen. A full
// table starts over (a bench never gets there: the forwarder restarts per run).
static uint8_t lookup(uint32_t saddr, uint32_t ports, uint8_t proto) {
  if (table_count >= TABLE_MAX) {
    memset(table, 0, sizeof(struct flow) * TABLE_SIZE);
    table_count = 0;
  }
  for (uint32_t i = hash(saddr, ports, proto);; i = (i + 1) & (TABLE_SIZE - 1)) {
    struct flow *f = &table[i];
    if (!f->used) {
      f->saddr = saddr;
      f->ports = ports;
      f->proto = proto;
      f->used = 1;
      f->rs = (uint8_t)next_rs;
      next_rs ^= 1;
      table_count++;
      return f->rs;
    }
    if (f->saddr == saddr && f->ports == ports && f->proto == proto) return f->rs;
  }
}

// Rewrites one address field (offset 12 = source, 16 = destination) and both checksums.
static void rewrite(uint8_t *ip, int off, uint32_t to, uint8_t *l4sum, int partial, int udp) {
  uint32_t from;
  memcpy(&from, ip + off, 4);
  memcpy(ip + off, &to, 4);
  csum_replace4(ip + 10, from, to);
  if (!l4sum) return;
  if (partial) {
    csum_partial_replace4(l4sum, from, to);
    return;
  }
  if (udp && l4sum[0] == 0 && l4sum[1] == 0) return; // UDP without a checksum
  csum_replace4(l4sum, from, to);
  if (udp && l4sum[0] == 0 && l4sum[1] == 0) l4sum[0] = l4sum[1] = 0xff;
}

static int tun_attach(const char *name, int vnet) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) { perror("open /dev/net/tun"); exit(1); }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); exit(1); }
  if (vnet) {
    int sz = sizeof(struct virtio_net_hdr);
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) { perror("TUNSETVNETHDRSZ"); exit(1); }
    if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0) { perror("TUNSETOFFLOAD"); exit(1); }
  }
  return fd;
}

static uint32_t addr(const char *s) {
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1) { fprintf(stderr, "tunnat: bad address %s\n", s); exit(2); }
  return a.s_addr;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: tunnat IFNAME VIP RS1 RS2 [VNET 0|1]\n");
    return 2;
  }
  const uint32_t vip = addr(argv[2]);
  const uint32_t rs[2] = { addr(argv[3]), addr(argv[4]) };
  const int vnet = argc > 5 && atoi(argv[5]) != 0;
  const int hlen = vnet ? (int)sizeof(struct virtio_net_hdr) : 0;
  table = calloc(TABLE_SIZE, sizeof(struct flow));
  static uint8_t buf[BUF_LEN];
  if (!table) { perror("calloc"); return 1; }
  int fd = tun_attach(argv[1], vnet);
  fprintf(stderr, "tunnat: ready on %s (vnet %d)\n", argv[1], vnet);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("read");
      return 1;
    }
    if (n < hlen + 20) continue;
    uint8_t *ip = buf + hlen;
    if ((ip[0] >> 4) != 4) continue; // IPv4 only; anything else would loop back into the TUN
    int ihl = (ip[0] & 15) * 4;
    uint8_t proto = ip[9];
    int frag = ((ip[6] & 0x1f) << 8 | ip[7]) != 0;
    if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || frag || n < hlen + ihl + 8) continue;
    uint8_t *l4 = ip + ihl;
    uint8_t *l4sum = proto == IPPROTO_TCP ? l4 + 16 : l4 + 6;
    if (proto == IPPROTO_TCP && n < hlen + ihl + 18) continue;
    int partial = vnet && (((struct virtio_net_hdr *)buf)->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
    uint32_t saddr, daddr, ports;
    memcpy(&saddr, ip + 12, 4);
    memcpy(&daddr, ip + 16, 4);
    memcpy(&ports, l4, 4);
    if (daddr == vip) {
      rewrite(ip, 16, rs[lookup(saddr, ports, proto)], l4sum, partial, proto == IPPROTO_UDP);
    } else if (saddr == rs[0] || saddr == rs[1]) {
      rewrite(ip, 12, vip, l4sum, partial, proto == IPPROTO_UDP);
    } else {
      continue;
    }
    if (write(fd, buf, (size_t)n) < 0 && errno != EINTR && errno != ENOBUFS && errno != EIO && errno != EINVAL) {
      perror("write");
      return 1;
    }
  }
}
