#define _GNU_SOURCE
#include "CLinuxShim.h"
#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <malloc.h>

int CLinuxShim_pinCurrentThread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

_Static_assert(sizeof(CLinuxShim_Affinity) >= sizeof(cpu_set_t), "CLinuxShim_Affinity holds a cpu_set_t");

int CLinuxShim_currentAffinity(CLinuxShim_Affinity *saved) {
    return pthread_getaffinity_np(pthread_self(), sizeof(cpu_set_t), (cpu_set_t *)(void *)saved);
}

int CLinuxShim_restoreAffinity(const CLinuxShim_Affinity *saved) {
    return pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), (const cpu_set_t *)(const void *)saved);
}

/* The fanout programs: which member of the group a packet goes to. They
 * hash the IP addresses only, symmetrically (source XOR destination), so
 * every packet between two hosts reaches one member: both directions of a
 * flow, and a datagram's fragments with its flow's unfragmented packets. The
 * kernel's own hash (PACKET_FANOUT_HASH) covers the ports of an unfragmented
 * packet but not of a fragment, so a query and its answer in fragments could
 * reach two members, neither of which saw the exchange both ways. The kernel
 * takes the result modulo the number of members: the multiply and the fold
 * mix the high bits into the low ones. Anything that is not IP, or too short
 * (a failed load ends a classic BPF program with 0), goes to member 0. No
 * PACKET_FANOUT_FLAG_DEFRAG: with it the kernel reassembles IP fragments
 * before any member sees them, so a datagram's fragments reach the capture
 * as one packet and a lone fragment never does. */

/* Ethernet: read from the link-layer header (SKF_LL_OFF) as the decoder
 * does, past up to two VLAN tags. A received frame's outer tag is already in
 * the skb's metadata, a sent one's is still in the data when the device does
 * not insert tags itself (virtio): reading the frame's own EtherTypes gets
 * both directions of a VLAN's flow to one member. X holds the tag bytes (0,
 * 4 or 8; kept in M[2]), M[0] the XOR so far, M[1] a source word. */
static struct sock_filter ethernetFanout[] = {
    /*  0       */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0),                        /* tag bytes: 0 */
    /*  1       */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF + 12),           /* EtherType */
    /*  2       */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021Q, 1, 0),        /* to tag1 */
    /*  3       */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021AD, 0, 6),       /* to tag1, else type */
    /*  4 tag1: */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 4),                        /* one tag */
    /*  5       */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF + 16),          
    /*  6       */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021Q, 1, 0),        /* to tag2 */
    /*  7       */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021AD, 0, 2),       /* to tag2, else type */
    /*  8 tag2: */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 8),                        /* two tags */
    /*  9       */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF + 20),          
    /* 10 type: */ BPF_STMT(BPF_STX, 2),                                          /* M[2]: the tag bytes */
    /* 11       */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 1, 0),           /* to v4 */
    /* 12       */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 6, 48),        /* to v6, else zero */
    /* 13 v4:   */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 26),           /* IPv4 source */
    /* 14       */ BPF_STMT(BPF_ST, 0),                                          
    /* 15       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 30),           /* IPv4 destination */
    /* 16       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),                       
    /* 17       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 18       */ BPF_JUMP(BPF_JMP | BPF_JA, 37, 0, 0),                          /* to mix */
    /* 19 v6:   */ BPF_STMT(BPF_LD | BPF_IMM, 0),                                
    /* 20       */ BPF_STMT(BPF_ST, 0),                                           /* M[0]: the XOR so far */
    /* 21       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 22),           /* IPv6 source, word 0 */
    /* 22       */ BPF_STMT(BPF_ST, 1),                                          
    /* 23       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 38),           /* destination, word 0 */
    /* 24       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),                       
    /* 25       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 26       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),                       
    /* 27       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 28       */ BPF_STMT(BPF_ST, 0),                                          
    /* 29       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),                        /* the tag bytes again */
    /* 30       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 26),           /* IPv6 source, word 1 */
    /* 31       */ BPF_STMT(BPF_ST, 1),                                          
    /* 32       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 42),           /* destination, word 1 */
    /* 33       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),                       
    /* 34       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 35       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),                       
    /* 36       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 37       */ BPF_STMT(BPF_ST, 0),                                          
    /* 38       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),                        /* the tag bytes again */
    /* 39       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 30),           /* IPv6 source, word 2 */
    /* 40       */ BPF_STMT(BPF_ST, 1),                                          
    /* 41       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 46),           /* destination, word 2 */
    /* 42       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),                       
    /* 43       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 44       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),                       
    /* 45       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 46       */ BPF_STMT(BPF_ST, 0),                                          
    /* 47       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),                        /* the tag bytes again */
    /* 48       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 34),           /* IPv6 source, word 3 */
    /* 49       */ BPF_STMT(BPF_ST, 1),                                          
    /* 50       */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 50),           /* destination, word 3 */
    /* 51       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),                       
    /* 52       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 53       */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),                       
    /* 54       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                       
    /* 55       */ BPF_STMT(BPF_ST, 0),                                          
    /* 56 mix:  */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1u),              /* A * golden ratio */
    /* 57       */ BPF_STMT(BPF_MISC | BPF_TAX, 0),                              
    /* 58       */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),                      
    /* 59       */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                        /* high half folded into the low */
    /* 60       */ BPF_STMT(BPF_RET | BPF_A, 0),                                 
    /* 61 zero: */ BPF_STMT(BPF_RET | BPF_K, 0),                                  /* neither IPv4 nor IPv6: member 0 */
};

/* Other link types (tun, WireGuard: the packet starts with its IP header):
 * read relative to the network header (SKF_NET_OFF); skb->protocol
 * (SKF_AD_PROTOCOL) says IPv4 or IPv6. */
static struct sock_filter networkFanout[] = {
    /*  0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
    /*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 5),               /* not IPv4: to 7 */
    /*  2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),              /* IPv4 source */
    /*  3 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /*  4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 16),              /* IPv4 destination */
    /*  5 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /*  6 */ BPF_JUMP(BPF_JMP | BPF_JA, 26, 0, 0),                               /* to 33: mix */
    /*  7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 30),             /* neither: to 38 */
    /* IPv6: the XOR of the source's and the destination's four words. */
    /*  8 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 8),
    /*  9 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 10 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 24),
    /* 11 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 12 */ BPF_STMT(BPF_ST, 0),
    /* 13 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
    /* 14 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 15 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 28),
    /* 16 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 17 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 18 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 19 */ BPF_STMT(BPF_ST, 0),
    /* 20 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 16),
    /* 21 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 22 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 32),
    /* 23 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 24 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 25 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 26 */ BPF_STMT(BPF_ST, 0),
    /* 27 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 20),
    /* 28 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 29 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 36),
    /* 30 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 31 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 32 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 33 */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1u),                  /* mix, as above */
    /* 34 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 35 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
    /* 36 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 37 */ BPF_STMT(BPF_RET | BPF_A, 0),
    /* 38 */ BPF_STMT(BPF_RET | BPF_K, 0),
};

int CLinuxShim_joinFanout(int fd, uint16_t groupID, int ethernetFrames) {
    if (fd < 0) return EBADF;
    int arg = (int)groupID | (PACKET_FANOUT_CBPF << 16);
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) != 0) return errno;
    /* The group has one program; every member sets the same one. */
    struct sock_fprog program = ethernetFrames
        ? (struct sock_fprog){ .len = sizeof(ethernetFanout) / sizeof(ethernetFanout[0]), .filter = ethernetFanout }
        : (struct sock_fprog){ .len = sizeof(networkFanout) / sizeof(networkFanout[0]), .filter = networkFanout };
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &program, sizeof(program)) != 0) return errno;
    return 0;
}

int CLinuxShim_availableCPUs(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

int CLinuxShim_setKeepCapabilities(int on) {
    return prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0) == 0 ? 0 : errno;
}

int CLinuxShim_setNoNewPrivileges(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : errno;
}

int CLinuxShim_setCapabilities(uint64_t keep) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {
        { (uint32_t)keep, (uint32_t)keep, 0 },
        { (uint32_t)(keep >> 32), (uint32_t)(keep >> 32), 0 },
    };
    return syscall(SYS_capset, &header, data) == 0 ? 0 : errno;
}

uint64_t CLinuxShim_effectiveCapabilities(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return UINT64_MAX;
    return (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
}

int CLinuxShim_eventDescriptor(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void CLinuxShim_signalEvent(int fd) {
    uint64_t one = 1;
    ssize_t written = write(fd, &one, sizeof one);
    (void)written;  /* a full counter is still readable: the waiter wakes either way */
}

void CLinuxShim_drainEvent(int fd) {
    uint64_t count;
    ssize_t got = read(fd, &count, sizeof count);
    (void)got;  /* EAGAIN: nothing was signalled */
}

int CLinuxShim_nameCurrentThread(const char *name) {
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = 0;
    return pthread_setname_np(pthread_self(), cut);
}

int CLinuxShim_boundInterfaceIndex(int fd) {
    struct sockaddr_ll address;
    socklen_t length = sizeof address;
    memset(&address, 0, sizeof address);
    if (getsockname(fd, (struct sockaddr *)(void *)&address, &length) != 0) return -1;
    if (address.sll_family != AF_PACKET) return -1;
    return address.sll_ifindex;
}

int CLinuxShim_linkEventSocket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -1;
    struct sockaddr_nl address;
    memset(&address, 0, sizeof address);
    address.nl_family = AF_NETLINK;
    address.nl_groups = RTMGRP_LINK;
    if (bind(fd, (struct sockaddr *)(void *)&address, sizeof address) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int CLinuxShim_drainLinkEvents(int fd) {
    char buffer[8192];
    int events = 0;
    for (;;) {
        ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (got > 0) { events = 1; continue; }
        if (got < 0 && errno == EINTR) continue;
        /* ENOBUFS: the kernel had more events than the socket could hold;
         * some were lost, so the caller must look again all the same. */
        if (got < 0 && errno == ENOBUFS) { events = 1; continue; }
        return events;
    }
}

void CLinuxShim_releaseFreeHeap(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}
