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

int CLinuxShim_joinFanout(int fd, uint16_t groupID) {
    if (fd < 0) return EBADF;
    /* No PACKET_FANOUT_FLAG_DEFRAG: with it the kernel reassembles IP
     * fragments before any member sees them, so a datagram's fragments reach
     * the capture as one packet and a lone fragment never does. Every
     * fragment of one datagram still lands on one member: the symmetric hash
     * of a fragment (first or later) covers its addresses, not its ports. */
    int arg = (int)groupID | (PACKET_FANOUT_HASH << 16);
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) != 0) return errno;
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
