/*
 * The SYN and SYN-ACK timeout towards each peer (Linux: a BPF sock_ops
 * program on the server's own cgroup).  See link_tcp_bpf.c.
 */
#ifndef LINK_TCP_BPF_H
#define LINK_TCP_BPF_H

#include <sys/socket.h>

typedef struct link_tcp_bpf_s link_tcp_bpf_t;

/* NULL when the host cannot (not Linux, no cgroup2, no privilege, the
 * server in the root cgroup); the reason is logged once. */
link_tcp_bpf_t *link_tcp_bpf_open(void);

/* The first timeout of our SYN to addr, and of our SYN-ACK to a SYN from
 * addr, in seconds; <= 0: the kernel's own (1 s). */
void link_tcp_bpf_set(link_tcp_bpf_t *b, const struct sockaddr_storage *addr,
                      double syn, double synack);

void link_tcp_bpf_close(link_tcp_bpf_t *b);

#endif
