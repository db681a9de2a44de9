#define _GNU_SOURCE
#include "CPcapShim.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <linux/if_packet.h>

int CPcapShim_pinCurrentThread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int CPcapShim_joinFanout(pcap_t *handle, uint16_t groupID) {
    int fd = pcap_fileno(handle);
    if (fd < 0) return EBADF;
    int arg = (int)groupID | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) != 0) return errno;
    return 0;
}

int CPcapShim_availableCPUs(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}
