// CLinuxShim: a thin, prefixed C surface over Linux for what Swift cannot
// import directly (socket options, prctl/capset, CPU affinity, prefetch and
// SIMD bucket scans). No logic lives here.
#ifndef CLINUXSHIM_H
#define CLINUXSHIM_H

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int CLinuxShim_pinCurrentThread(int cpu);

/// A thread's CPU affinity mask, opaque to Swift (a cpu_set_t's 1,024 bits).
typedef struct { unsigned long bits[16]; } CLinuxShim_Affinity;

/// The calling thread's affinity, into `saved`. Returns 0 or an errno value.
int CLinuxShim_currentAffinity(CLinuxShim_Affinity *saved);

/// Gives the calling thread back an affinity read by `CLinuxShim_currentAffinity`.
int CLinuxShim_restoreAffinity(const CLinuxShim_Affinity *saved);

/// Joins a packet socket (a live pcap handle's `pcap_fileno`) to a PACKET_FANOUT group
/// whose classic BPF program picks the member from a symmetric hash (TCP: of
/// its addresses and ports; anything else and every fragment: of the
/// addresses), so both directions of a flow, and a UDP datagram's fragments,
/// reach one member; fragments are delivered as they are on the
/// wire, never reassembled. `ethernetFrames`: nonzero when the handle's link
/// type is Ethernet (the program then reads the frame's VLAN tags). Returns 0
/// or an errno value.
int CLinuxShim_joinFanout(int socketDescriptor, uint16_t groupID, int ethernetFrames);

/// The interface index a packet socket is bound to (getsockname), or -1:
/// the kernel sets it to -1 when the device is unregistered, and a socket
/// keeps that binding for ever, even when a device of the same name returns.
int CLinuxShim_boundInterfaceIndex(int socketDescriptor);

/// A non-blocking NETLINK_ROUTE socket subscribed to link events
/// (RTMGRP_LINK: a device added, removed or changed), or -1. It needs no
/// privilege. Readable when an event is queued.
int CLinuxShim_linkEventSocket(void);

/// Reads every queued message of a link-event socket without waiting.
/// Returns 1 when there was at least one (or the queue overflowed), else 0.
int CLinuxShim_drainLinkEvents(int socketDescriptor);

/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC): a descriptor another thread can
/// make readable (`CLinuxShim_signalEvent`). Returns it, or -1.
int CLinuxShim_eventDescriptor(void);

/// Makes an eventfd readable (adds 1 to its counter).
void CLinuxShim_signalEvent(int descriptor);

/// Reads an eventfd's counter back to 0 (not readable until signalled again).
void CLinuxShim_drainEvent(int descriptor);

/// Names the calling thread for the kernel (/proc/…/comm, `top -H`): at most
/// 15 bytes, longer names are cut. Returns 0 or an errno value.
int CLinuxShim_nameCurrentThread(const char *name);

/// Number of CPUs the process may run on.
int CLinuxShim_availableCPUs(void);

/// malloc_trim(0) (glibc): hands the heap's free pages back to the kernel.
void CLinuxShim_releaseFreeHeap(void);

/// prctl(PR_SET_KEEPCAPS, on): keep permitted capabilities across setuid.
/// Returns 0 or an errno value.
int CLinuxShim_setKeepCapabilities(int on);

/// prctl(PR_SET_NO_NEW_PRIVS, 1): no exec can ever gain privileges again.
/// Returns 0 or an errno value.
int CLinuxShim_setNoNewPrivileges(void);

/// capset(2) for the calling thread (Linux capabilities are per thread:
/// call it on every thread that needs them, or before starting threads): effective = permitted = `keep` (a bit mask of CAP_*
/// numbers below 64), inheritable = 0. Returns 0 or an errno value.
int CLinuxShim_setCapabilities(uint64_t keep);

/// capget(2): the effective set as a bit mask, or UINT64_MAX on failure.
uint64_t CLinuxShim_effectiveCapabilities(void);

static const int CLinuxShim_capNetRaw = 13;   /* CAP_NET_RAW */

/// A hint that `address` will be written soon: starts loading its cache line.
/// Swift has no prefetch intrinsic; this inline function compiles to one
/// `prefetchw`/`prefetcht0` instruction and never faults.
static inline void CLinuxShim_prefetchForWrite(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

/// The same hint for memory that will only be read (another core wrote it).
static inline void CLinuxShim_prefetchForRead(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/* Flow-table bucket scans (16 slots), vectorized where the CPU allows. Swift
 * has no portable movemask; these inline functions compile to a handful of
 * SSE2 instructions on x86-64 (a scalar loop elsewhere), a few times fewer
 * than the scalar loops they replace (BENCHMARKS.md). */

/// A flow-table bucket is one 64-byte cache line: its 16 slots' 16-bit tags
/// (bytes 0–31, 0 = empty), then their eviction ranks (bytes 32–47, for
/// `CLinuxShim_lowestRankSlot`). The lookup and the eviction choice read
/// the same line.
///
/// Bits 0–15: slots whose tag equals `tag`; bits 16–31: empty slots (tag 0).
/// `tags` points at a bucket's 16 tags, 16-byte aligned.
static inline uint32_t CLinuxShim_matchBucketTags(const uint16_t *tags, uint16_t tag) {
#if defined(__SSE2__)
    const __m128i t = _mm_set1_epi16((short)tag);
    const __m128i z = _mm_setzero_si128();
    const __m128i a = _mm_load_si128((const __m128i *)(const void *)tags);
    const __m128i b = _mm_load_si128((const __m128i *)(const void *)(tags + 8));
    // Each 16-bit compare result (0 or -1) saturates to one byte, in slot order.
    const uint32_t hit = (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(_mm_cmpeq_epi16(a, t), _mm_cmpeq_epi16(b, t)));
    const uint32_t empty = (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(_mm_cmpeq_epi16(a, z), _mm_cmpeq_epi16(b, z)));
    return hit | (empty << 16);
#else
    uint32_t hit = 0, empty = 0;
    for (int k = 0; k < 16; k++) {
        if (tags[k] == tag) hit |= 1u << k;
        if (tags[k] == 0) empty |= 1u << k;
    }
    return hit | (empty << 16);
#endif
}

/// The slot (0–15) with the lowest of 16 rank bytes; among equal ranks the
/// first at or after `rotation` (mod 16), wrapping around.
static inline int CLinuxShim_lowestRankSlot(const uint8_t *ranks, unsigned rotation) {
    unsigned rot = rotation & 15u;
#if defined(__SSE2__)
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)ranks);
    __m128i m = _mm_min_epu8(v, _mm_srli_si128(v, 8));
    m = _mm_min_epu8(m, _mm_srli_si128(m, 4));
    m = _mm_min_epu8(m, _mm_srli_si128(m, 2));
    m = _mm_min_epu8(m, _mm_srli_si128(m, 1));
    const int lowest = _mm_cvtsi128_si32(m) & 0xFF;
    uint32_t mask = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)lowest)));
#else
    uint8_t lowest = 255;
    for (int k = 0; k < 16; k++) if (ranks[k] < lowest) lowest = ranks[k];
    uint32_t mask = 0;
    for (int k = 0; k < 16; k++) if (ranks[k] == lowest) mask |= 1u << k;
#endif
    const uint32_t rotated = ((mask >> rot) | (mask << (16u - rot))) & 0xFFFFu;
    return (int)((__builtin_ctz(rotated) + rot) & 15u);
}

#endif
