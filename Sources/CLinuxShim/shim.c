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
#include <netinet/in.h>
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

/* The fanout programs: which member of the group a packet goes to, from a
 * hash that is symmetric (source XOR destination), so both directions of a
 * flow reach one member. TCP is hashed on its addresses and ports, as the
 * kernel's own hash (PACKET_FANOUT_HASH) does, so a flood from one address
 * still spreads over the members. Everything else, and every fragment, is
 * hashed on its addresses only: the kernel's hash covers an unfragmented UDP
 * packet's ports but not a fragment's, so a DNS query and its answer in
 * fragments could reach two members, neither of which saw the exchange both
 * ways. (A TCP segment cut in IP fragments, which TCP's path MTU discovery
 * avoids, still can.) The kernel takes the result modulo the number of
 * members: the multiply and the fold mix the high bits into the low ones.
 * Anything that is not IP, or too short (a failed load ends a classic BPF
 * program with 0), goes to member 0. No PACKET_FANOUT_FLAG_DEFRAG: with it
 * the kernel reassembles IP fragments before any member sees them, so a
 * datagram's fragments reach the capture as one packet and a lone fragment
 * never does. Scratch memory: M[0] the addresses' XOR, M[1] a source word
 * or port, M[2] (Ethernet) the VLAN tag bytes. */

/* Ethernet: read from the link-layer header (SKF_LL_OFF) as the decoder
 * does, past up to two VLAN tags (X: their bytes). A received frame's outer
 * tag is already in the skb's metadata, a sent one's is still in the data
 * when the device does not insert tags itself (virtio): reading the frame's
 * own EtherTypes gets both directions of a VLAN's flow to one member. */
static struct sock_filter ethernetFanout[] = {
    /*  0        */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0),                          /* X: tag bytes, 0 */
    /*  1        */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF + 12),             /* EtherType */
    /*  2        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021Q, 1, 0),          /* to tag1 */
    /*  3        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021AD, 0, 6),         /* to tag1, else type */
    /*  4 tag1:  */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 4),                          /* one tag */
    /*  5        */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF + 16),
    /*  6        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021Q, 1, 0),          /* to tag2 */
    /*  7        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_8021AD, 0, 2),         /* to tag2, else type */
    /*  8 tag2:  */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 8),                          /* two tags */
    /*  9        */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_LL_OFF + 20),
    /* 10 type:  */ BPF_STMT(BPF_STX, 2),                                            /* M[2]: the tag bytes */
    /* 11        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 1, 0),             /* to v4 */
    /* 12        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 17, 70),         /* to v6, else zero */
    /* 13 v4:    */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 12),        /* IPv4 source */
    /* 14        */ BPF_STMT(BPF_ST, 1),
    /* 15        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 16),        /* destination */
    /* 16        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 17        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 18        */ BPF_STMT(BPF_ST, 0),                                             /* M[0]: the addresses' XOR */
    /* 19        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),
    /* 20        */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, SKF_LL_OFF + 14 + 6),         /* flags and fragment offset */
    /* 21        */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 55, 0),             /* a fragment: to addrs */
    /* 22        */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, SKF_LL_OFF + 14 + 9),         /* protocol */
    /* 23        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 53),         /* else addrs */
    /* 24        */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, SKF_LL_OFF + 14),             /* version and header length */
    /* 25        */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf),
    /* 26        */ BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 2),
    /* 27        */ BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0),                          /* + the tag bytes */
    /* 28        */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 29        */ BPF_JUMP(BPF_JMP | BPF_JA, 39, 0, 0),                            /* to ports */
    /* 30 v6:    */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 8),         /* IPv6 source, word 0 */
    /* 31        */ BPF_STMT(BPF_ST, 1),
    /* 32        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 24),        /* destination, word 0 */
    /* 33        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 34        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 35        */ BPF_STMT(BPF_ST, 0),
    /* 36        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),                          /* X: the tag bytes again */
    /* 37        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 12),        /* IPv6 source, word 1 */
    /* 38        */ BPF_STMT(BPF_ST, 1),
    /* 39        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 28),        /* destination, word 1 */
    /* 40        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 41        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 42        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 43        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 44        */ BPF_STMT(BPF_ST, 0),
    /* 45        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),                          /* X: the tag bytes again */
    /* 46        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 16),        /* IPv6 source, word 2 */
    /* 47        */ BPF_STMT(BPF_ST, 1),
    /* 48        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 32),        /* destination, word 2 */
    /* 49        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 50        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 51        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 52        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 53        */ BPF_STMT(BPF_ST, 0),
    /* 54        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),                          /* X: the tag bytes again */
    /* 55        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 20),        /* IPv6 source, word 3 */
    /* 56        */ BPF_STMT(BPF_ST, 1),
    /* 57        */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, SKF_LL_OFF + 14 + 36),        /* destination, word 3 */
    /* 58        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 59        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 60        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 61        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 62        */ BPF_STMT(BPF_ST, 0),
    /* 63        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 2),                          /* X: the tag bytes again */
    /* 64        */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, SKF_LL_OFF + 14 + 6),         /* next header */
    /* 65        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 11),         /* else addrs */
    /* 66        */ BPF_STMT(BPF_LD | BPF_W | BPF_MEM, 2),
    /* 67        */ BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 40),                         /* the TCP header: tags + 40 */
    /* 68        */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 69 ports: */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, SKF_LL_OFF + 14),             /* TCP source port */
    /* 70        */ BPF_STMT(BPF_ST, 1),
    /* 71        */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, SKF_LL_OFF + 14 + 2),         /* destination port */
    /* 72        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 73        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 74        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 75        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                          /* ports' XOR ^ addresses' XOR */
    /* 76        */ BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),                             /* to mix */
    /* 77 addrs: */ BPF_STMT(BPF_LD | BPF_W | BPF_MEM, 0),                           /* the addresses' XOR alone */
    /* 78 mix:   */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1u),                /* A * golden ratio */
    /* 79        */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 80        */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
    /* 81        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                          /* high half folded into the low */
    /* 82        */ BPF_STMT(BPF_RET | BPF_A, 0),
    /* 83 zero:  */ BPF_STMT(BPF_RET | BPF_K, 0),                                    /* neither IPv4 nor IPv6: member 0 */
};

/* Other link types (tun, WireGuard: the packet starts with its IP header):
 * read relative to the network header (SKF_NET_OFF); skb->protocol
 * (SKF_AD_PROTOCOL) says IPv4 or IPv6. */
static struct sock_filter networkFanout[] = {
    /*  0        */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL), /* skb->protocol */
    /*  1        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 1, 0),             /* to v4 */
    /*  2        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 14, 61),         /* to v6, else zero */
    /*  3 v4:    */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),            /* IPv4 source */
    /*  4        */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /*  5        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 16),            /* destination */
    /*  6        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /*  7        */ BPF_STMT(BPF_ST, 0),
    /*  8        */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_NET_OFF + 6),             /* flags and fragment offset */
    /*  9        */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 48, 0),             /* a fragment: to addrs */
    /* 10        */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF + 9),             /* protocol */
    /* 11        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 46),         /* else addrs */
    /* 12        */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF),                 /* version and header length */
    /* 13        */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf),
    /* 14        */ BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 2),
    /* 15        */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 16        */ BPF_JUMP(BPF_JMP | BPF_JA, 33, 0, 0),                            /* to ports */
    /* 17 v6:    */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 8),             /* IPv6 source, word 0 */
    /* 18        */ BPF_STMT(BPF_ST, 1),
    /* 19        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 24),            /* destination, word 0 */
    /* 20        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 21        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 22        */ BPF_STMT(BPF_ST, 0),
    /* 23        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),            /* IPv6 source, word 1 */
    /* 24        */ BPF_STMT(BPF_ST, 1),
    /* 25        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 28),            /* destination, word 1 */
    /* 26        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 27        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 28        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 29        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 30        */ BPF_STMT(BPF_ST, 0),
    /* 31        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 16),            /* IPv6 source, word 2 */
    /* 32        */ BPF_STMT(BPF_ST, 1),
    /* 33        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 32),            /* destination, word 2 */
    /* 34        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 35        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 36        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 37        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 38        */ BPF_STMT(BPF_ST, 0),
    /* 39        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 20),            /* IPv6 source, word 3 */
    /* 40        */ BPF_STMT(BPF_ST, 1),
    /* 41        */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 36),            /* destination, word 3 */
    /* 42        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 43        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 44        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 45        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 46        */ BPF_STMT(BPF_ST, 0),
    /* 47        */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF + 6),             /* next header */
    /* 48        */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 9),          /* else addrs */
    /* 49        */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 40),                         /* the TCP header */
    /* 50 ports: */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, SKF_NET_OFF),                 /* TCP source port */
    /* 51        */ BPF_STMT(BPF_ST, 1),
    /* 52        */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, SKF_NET_OFF + 2),             /* destination port */
    /* 53        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 1),
    /* 54        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 55        */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
    /* 56        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                          /* ports' XOR ^ addresses' XOR */
    /* 57        */ BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),                             /* to mix */
    /* 58 addrs: */ BPF_STMT(BPF_LD | BPF_W | BPF_MEM, 0),                           /* the addresses' XOR alone */
    /* 59 mix:   */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1u),                /* A * golden ratio */
    /* 60        */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 61        */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
    /* 62        */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                          /* high half folded into the low */
    /* 63        */ BPF_STMT(BPF_RET | BPF_A, 0),
    /* 64 zero:  */ BPF_STMT(BPF_RET | BPF_K, 0),                                    /* neither IPv4 nor IPv6: member 0 */
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
