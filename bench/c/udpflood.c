// udpflood: the packet source of bench/e2e.ts's forwarded-pps test. FLOWS connected UDP
// sockets (one source port each, so FLOWS distinct 5-tuples) send PKTLEN-byte IPv4
// packets (IP + UDP + payload) to DST:PORT in sendmmsg batches of 64, round robin over
// the sockets, for SECONDS, then print what was sent and exit. It stops on its own even
// when every send fails (the deadline is checked after each batch, and alarm() kills it
// two seconds after the deadline whatever happens); the harness also runs it under
// timeout(1). Bounded by design: never point it at an address outside the test's
// namespaces.
//
//   udpflood DST PORT SECONDS [FLOWS=16] [PKTLEN=64]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_FLOWS 256

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: udpflood DST PORT SECONDS [FLOWS=16] [PKTLEN=64]\n");
    return 2;
  }
  int seconds = atoi(argv[3]);
  int flows = argc > 4 ? atoi(argv[4]) : 16;
  int pktlen = argc > 5 ? atoi(argv[5]) : 64;
  if (seconds < 1 || seconds > 600 || flows < 1 || flows > MAX_FLOWS || pktlen < 28 || pktlen > 1500) {
    fprintf(stderr, "udpflood: SECONDS 1..600, FLOWS 1..%d, PKTLEN 28..1500\n", MAX_FLOWS);
    return 2;
  }
  alarm((unsigned)seconds + 2); // the last resort: SIGALRM's default action ends the process

  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "udpflood: bad address %s\n", argv[1]);
    return 2;
  }
  int fds[MAX_FLOWS];
  for (int i = 0; i < flows; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&dst, sizeof dst) < 0) {
      perror("udpflood: socket/connect");
      return 1;
    }
  }

  static char payload[1500];
  memset(payload, 'x', sizeof payload);
  struct iovec iov = { .iov_base = payload, .iov_len = (size_t)(pktlen - 28) };
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  unsigned long long sent = 0, errors = 0;
  double t0 = now(), deadline = t0 + seconds, t = t0;
  for (int f = 0; t < deadline; f = (f + 1) % flows, t = now()) {
    int r = sendmmsg(fds[f], msgs, BATCH, 0);
    if (r > 0) sent += (unsigned long long)r;
    else errors++; // ENOBUFS, ECONNREFUSED from an ICMP error ...: keep going until the deadline
  }
  printf("sent %llu errors %llu elapsed %.3f\n", sent, errors, t - t0);
  return 0;
}
