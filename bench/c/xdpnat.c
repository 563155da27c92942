// xdpnat: a minimal C NAT forwarder on AF_XDP sockets, the "fewer kernel passes" limit
// beside tunnat.c's TUN limit. An XDP program on each of the balancer's three bench
// interfaces (client side, and the two bridge ports toward the real servers) redirects
// IPv4 TCP/UDP packets to the VIP, or from a real server's port, into an AF_XDP socket
// (copy mode); everything else (ARP, other traffic) goes on to the kernel. The forwarder
// rewrites the destination (round robin per new 5-tuple) or the source (back to the VIP),
// decrements the TTL, fixes the checksums, sets the Ethernet addresses of the next hop and
// sends the frame out of the other interface's socket: the balancer's IP stack, routing
// and bridge never see those packets.
//
//   xdpnat IF_CL IF_RS1 IF_RS2 VIP RS1 RS2 PORT MAC_CL MAC_RS1 MAC_RS2 MAC_SRC_RS
//
// MAC_CL is the client's (the next hop toward clients), MAC_RS1/2 the real servers', and
// MAC_SRC_RS the source address for frames toward the real servers (the bridge's, which
// they hold for their gateway). Frames toward the client leave with IF_CL's own MAC.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NFRAMES 4096
#define FRAME 2048
#define RING 2048

static void die(const char *what) { fprintf(stderr, "xdpnat: %s: %s\n", what, strerror(errno)); exit(1); }

static int sys_bpf(int cmd, union bpf_attr *a) { return (int)syscall(SYS_bpf, cmd, a, sizeof(*a)); }

struct ring {
  uint32_t *prod, *cons, mask, cached;
  void *desc;
};

struct xsk {
  int fd, ifindex;
  uint8_t *umem;
  struct ring fill, comp, rx, tx;
  uint64_t freelist[NFRAMES];
  unsigned nfree, pending;
  uint8_t mac[6];
};

static struct xsk socks[3];
static uint32_t vip, rs[2];
static uint16_t port;
static uint8_t mac_cl[6], mac_rs[2][6], mac_src_rs[6];

static void map_ring(int fd, struct ring *r, struct xdp_ring_offset *o, uint64_t pgoff, size_t desc_size) {
  size_t len = o->desc + RING * desc_size;
  uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
  if (m == MAP_FAILED) die("mmap ring");
  r->prod = (uint32_t *)(m + o->producer);
  r->cons = (uint32_t *)(m + o->consumer);
  r->desc = m + o->desc;
  r->mask = RING - 1;
}

static int load_prog(int map_fd) {
  // struct xdp_md: data @0, data_end @4. Loads of network-order fields read little-endian.
  struct bpf_insn p[] = {
    {0x61, 2, 1, 0, 0},                 // r2 = data
    {0x61, 3, 1, 4, 0},                 // r3 = data_end
    {0xbf, 4, 2, 0, 0},                 // r4 = r2
    {0x07, 4, 0, 0, 38},                // r4 += 38 (eth 14 + ip 20 + ports 4)
    {0x2d, 4, 3, 20, 0},                // if r4 > r3 goto pass
    {0x69, 5, 2, 12, 0},                // r5 = ethertype
    {0x55, 5, 0, 18, 0x0008},           // != IPv4 -> pass
    {0x71, 5, 2, 14, 0},                // r5 = version/ihl
    {0x55, 5, 0, 16, 0x45},             // options -> pass
    {0x71, 5, 2, 23, 0},                // r5 = protocol
    {0x15, 5, 0, 1, 6},                 // tcp -> l4ok
    {0x55, 5, 0, 13, 17},               // not udp -> pass
    {0x61, 5, 2, 30, 0},                // l4ok: r5 = daddr
    {0x15, 5, 0, 5, (int32_t)vip},      // to the VIP -> redirect
    {0x61, 5, 2, 26, 0},                // r5 = saddr
    {0x15, 5, 0, 1, (int32_t)rs[0]},    // rs1 -> sport
    {0x55, 5, 0, 8, (int32_t)rs[1]},    // not rs2 -> pass
    {0x69, 5, 2, 34, 0},                // sport: r5 = source port
    {0x55, 5, 0, 6, htons(port)},       // not the service port -> pass
    {0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd}, {0, 0, 0, 0, 0}, // redirect: r1 = map
    {0xb7, 2, 0, 0, 0},                 // r2 = key 0
    {0xb7, 3, 0, 0, XDP_PASS},          // r3 = fallback action
    {0x85, 0, 0, 0, BPF_FUNC_redirect_map},
    {0x95, 0, 0, 0, 0},
    {0xb7, 0, 0, 0, XDP_PASS},          // pass
    {0x95, 0, 0, 0, 0},
  };
  static char log[65536];
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_XDP;
  a.insns = (uint64_t)(uintptr_t)p;
  a.insn_cnt = sizeof p / sizeof p[0];
  a.license = (uint64_t)(uintptr_t)"GPL";
  a.log_buf = (uint64_t)(uintptr_t)log;
  a.log_size = sizeof log;
  a.log_level = 1;
  int fd = sys_bpf(BPF_PROG_LOAD, &a);
  if (fd < 0) { fprintf(stderr, "%s\n", log); die("BPF_PROG_LOAD"); }
  return fd;
}

static void open_xsk(struct xsk *s, const char *ifname) {
  s->ifindex = (int)if_nametoindex(ifname);
  if (!s->ifindex) die(ifname);
  int ufd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(ufd, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
  memcpy(s->mac, ifr.ifr_hwaddr.sa_data, 6);
  close(ufd);

  s->fd = socket(AF_XDP, SOCK_RAW, 0);
  if (s->fd < 0) die("socket(AF_XDP)");
  s->umem = mmap(NULL, (size_t)NFRAMES * FRAME, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (s->umem == MAP_FAILED) die("mmap umem");
  struct xdp_umem_reg mr = {.addr = (uint64_t)(uintptr_t)s->umem, .len = (uint64_t)NFRAMES * FRAME, .chunk_size = FRAME, .headroom = 0};
  if (setsockopt(s->fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof mr)) die("XDP_UMEM_REG");
  int n = RING;
  if (setsockopt(s->fd, SOL_XDP, XDP_UMEM_FILL_RING, &n, sizeof n)) die("FILL_RING");
  if (setsockopt(s->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &n, sizeof n)) die("COMPLETION_RING");
  if (setsockopt(s->fd, SOL_XDP, XDP_RX_RING, &n, sizeof n)) die("RX_RING");
  if (setsockopt(s->fd, SOL_XDP, XDP_TX_RING, &n, sizeof n)) die("TX_RING");
  struct xdp_mmap_offsets off;
  socklen_t ol = sizeof off;
  if (getsockopt(s->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol)) die("XDP_MMAP_OFFSETS");
  map_ring(s->fd, &s->rx, &off.rx, XDP_PGOFF_RX_RING, sizeof(struct xdp_desc));
  map_ring(s->fd, &s->tx, &off.tx, XDP_PGOFF_TX_RING, sizeof(struct xdp_desc));
  map_ring(s->fd, &s->fill, &off.fr, XDP_UMEM_PGOFF_FILL_RING, sizeof(uint64_t));
  map_ring(s->fd, &s->comp, &off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, sizeof(uint64_t));
  // Half the frames wait in the fill ring for received packets, half are for sending.
  uint64_t *fr = s->fill.desc;
  for (unsigned i = 0; i < RING; i++) fr[i] = (uint64_t)i * FRAME;
  __atomic_store_n(s->fill.prod, RING, __ATOMIC_RELEASE);
  for (unsigned i = RING; i < NFRAMES; i++) s->freelist[s->nfree++] = (uint64_t)i * FRAME;
  struct sockaddr_xdp sa = {.sxdp_family = AF_XDP, .sxdp_flags = XDP_COPY, .sxdp_ifindex = (uint32_t)s->ifindex, .sxdp_queue_id = 0};
  if (bind(s->fd, (struct sockaddr *)&sa, sizeof sa)) die("bind(AF_XDP)");

  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_XSKMAP;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = 1;
  int map = sys_bpf(BPF_MAP_CREATE, &a);
  if (map < 0) die("BPF_MAP_CREATE");
  uint32_t key = 0, val = (uint32_t)s->fd;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)map;
  a.key = (uint64_t)(uintptr_t)&key;
  a.value = (uint64_t)(uintptr_t)&val;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a)) die("BPF_MAP_UPDATE_ELEM");
  int prog = load_prog(map);
  memset(&a, 0, sizeof a);
  a.link_create.prog_fd = (uint32_t)prog;
  a.link_create.target_ifindex = (uint32_t)s->ifindex;
  a.link_create.attach_type = BPF_XDP;
  a.link_create.flags = XDP_FLAGS_DRV_MODE;
  // The link detaches the program when this process exits, however it exits.
  if (sys_bpf(BPF_LINK_CREATE, &a) < 0) die("BPF_LINK_CREATE (XDP, native mode)");
}

static inline uint32_t add32(uint32_t sum, uint32_t v) { sum += v; return sum + (sum < v); }
static inline uint16_t fold(uint32_t s) { s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16); return (uint16_t)s; }
static inline void csum_replace4(uint8_t *f, uint32_t from, uint32_t to) {
  uint16_t hc; memcpy(&hc, f, 2);
  hc = (uint16_t)~fold(add32(add32((uint16_t)~hc, ~from), to));
  memcpy(f, &hc, 2);
}
static inline void csum_replace2(uint8_t *f, uint16_t from, uint16_t to) {
  uint16_t hc; memcpy(&hc, f, 2);
  hc = (uint16_t)~fold((uint32_t)(uint16_t)~hc + (uint16_t)~from + to);
  memcpy(f, &hc, 2);
}

// The L4 checksum from scratch. A veth peer offloads it: the frame XDP hands over still
// holds only the pseudo-header sum, with no mark saying so (without this step every
// connection failed). Recomputing always is the conservative cost for this limit.
static void l4_checksum(uint8_t *ip, unsigned len) {
  unsigned ihl = 20, l4len = len - ihl;
  uint8_t proto = ip[9];
  uint8_t *l4 = ip + ihl;
  unsigned at = proto == 6 ? 16 : 6;
  if (l4len < at + 2) return;
  l4[at] = l4[at + 1] = 0;
  uint64_t s = 0;
  uint32_t w;
  memcpy(&w, ip + 12, 4); s += w;
  memcpy(&w, ip + 16, 4); s += w;
  s += htons(proto) + htons((uint16_t)l4len);
  unsigned i = 0;
  for (; i + 4 <= l4len; i += 4) { memcpy(&w, l4 + i, 4); s += w; }
  if (i + 2 <= l4len) { uint16_t h; memcpy(&h, l4 + i, 2); s += h; i += 2; }
  if (i < l4len) s += l4[i];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  uint16_t c = (uint16_t)~s;
  if (proto == 17 && c == 0) c = 0xffff;
  memcpy(l4 + at, &c, 2);
}

// Returns the socket index to send on, or -1 to drop. Rewrites the frame in place.
static int nat(int from, uint8_t *f, unsigned len) {
  if (len < 38) return -1;
  uint8_t *ip = f + 14;
  unsigned iplen = ((unsigned)ip[2] << 8) | ip[3];
  if (iplen > len - 14 || iplen < 24 || ip[8] <= 1) return -1;
  uint32_t saddr, daddr;
  memcpy(&saddr, ip + 12, 4);
  memcpy(&daddr, ip + 16, 4);
  int out;
  if (from == 0 && daddr == vip) {
    uint16_t sport;
    memcpy(&sport, ip + 20, 2);
    // Stateless: a flow's packets all hash to one server (what matters here is the I/O).
    uint32_t h = (saddr ^ sport) * 0x9e3779b1u;
    int k = (int)(h >> 31);
    memcpy(ip + 16, &rs[k], 4);
    csum_replace4(ip + 10, daddr, rs[k]);
    memcpy(f, mac_rs[k], 6);
    memcpy(f + 6, mac_src_rs, 6);
    out = 1 + k;
  } else if (from != 0 && saddr == rs[from - 1]) {
    memcpy(ip + 12, &vip, 4);
    csum_replace4(ip + 10, saddr, vip);
    memcpy(f, mac_cl, 6);
    memcpy(f + 6, socks[0].mac, 6);
    out = 0;
  } else return -1;
  uint16_t old = (uint16_t)(ip[8] << 8 | ip[9]);
  ip[8]--;
  csum_replace2(ip + 10, htons(old), htons((uint16_t)(ip[8] << 8 | ip[9])));
  l4_checksum(ip, iplen);
  return out;
}

static void reap(struct xsk *s) {
  uint32_t c = *s->comp.cons, p = __atomic_load_n(s->comp.prod, __ATOMIC_ACQUIRE);
  uint64_t *d = s->comp.desc;
  for (; c != p; c++) s->freelist[s->nfree++] = d[c & s->comp.mask];
  __atomic_store_n(s->comp.cons, c, __ATOMIC_RELEASE);
}

static void parse_mac(const char *t, uint8_t *m) {
  if (sscanf(t, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) { fprintf(stderr, "xdpnat: bad MAC %s\n", t); exit(2); }
}

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  if (argc != 12) { fprintf(stderr, "usage: xdpnat IF_CL IF_RS1 IF_RS2 VIP RS1 RS2 PORT MAC_CL MAC_RS1 MAC_RS2 MAC_SRC_RS\n"); return 2; }
  if (inet_pton(AF_INET, argv[4], &vip) != 1 || inet_pton(AF_INET, argv[5], &rs[0]) != 1 || inet_pton(AF_INET, argv[6], &rs[1]) != 1) { fprintf(stderr, "xdpnat: bad address\n"); return 2; }
  port = (uint16_t)atoi(argv[7]);
  parse_mac(argv[8], mac_cl); parse_mac(argv[9], mac_rs[0]); parse_mac(argv[10], mac_rs[1]); parse_mac(argv[11], mac_src_rs);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  for (int i = 0; i < 3; i++) open_xsk(&socks[i], argv[1 + i]);
  fprintf(stderr, "xdpnat: forwarding\n");
  struct pollfd pf[3];
  for (int i = 0; i < 3; i++) pf[i] = (struct pollfd){.fd = socks[i].fd, .events = POLLIN};
  unsigned long fwd = 0, drop = 0;
  while (!stop) {
    if (poll(pf, 3, 1000) < 0 && errno != EINTR) die("poll");
    for (int i = 0; i < 3; i++) {
      struct xsk *s = &socks[i];
      uint32_t c = *s->rx.cons, p = __atomic_load_n(s->rx.prod, __ATOMIC_ACQUIRE);
      if (c == p) continue;
      struct xdp_desc *rd = s->rx.desc;
      uint64_t *fd = s->fill.desc;
      uint32_t fp = *s->fill.prod;
      for (; c != p; c++) {
        struct xdp_desc d = rd[c & s->rx.mask];
        uint8_t *f = s->umem + d.addr;
        int o = nat(i, f, d.len);
        struct xsk *t = o >= 0 ? &socks[o] : NULL;
        if (t && t->nfree == 0) reap(t);
        if (t && t->nfree > 0) {
          uint64_t a = t->freelist[--t->nfree];
          memcpy(t->umem + a, f, d.len);
          uint32_t tp = *t->tx.prod;
          ((struct xdp_desc *)t->tx.desc)[tp & t->tx.mask] = (struct xdp_desc){.addr = a, .len = d.len};
          __atomic_store_n(t->tx.prod, tp + 1, __ATOMIC_RELEASE);
          t->pending++;
          fwd++;
        } else drop++;
        fd[fp++ & s->fill.mask] = d.addr;
      }
      __atomic_store_n(s->rx.cons, c, __ATOMIC_RELEASE);
      __atomic_store_n(s->fill.prod, fp, __ATOMIC_RELEASE);
    }
    for (int i = 0; i < 3; i++) {
      struct xsk *t = &socks[i];
      // Copy mode sends in the system call, up to 32 frames per call.
      while (t->pending) {
        int r = (int)sendto(t->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
        int e = errno;
        if (r < 0 && e != EAGAIN && e != EBUSY && e != ENOBUFS) die("sendto");
        reap(t);
        unsigned left = *t->tx.prod - __atomic_load_n(t->tx.cons, __ATOMIC_ACQUIRE);
        if (left == t->pending && r < 0) break; // no progress: try again next round
        t->pending = left;
      }
    }
  }
  fprintf(stderr, "xdpnat: %lu forwarded, %lu dropped\n", fwd, drop);
  return 0;
}
