// CPcapShim: a thin, prefixed C surface over libpcap and Linux for what Swift
// cannot import directly (macros, variadic or socket-option calls, affinity).
// No logic lives here.
#ifndef CPCAPSHIM_H
#define CPCAPSHIM_H

#include <pcap/pcap.h>
#include <stdint.h>

/// PCAP_ERRBUF_SIZE is a macro; Swift sees this constant instead.
static const int CPcapShim_errbufSize = PCAP_ERRBUF_SIZE;
static const int CPcapShim_tstampPrecisionNano = PCAP_TSTAMP_PRECISION_NANO;
static const int CPcapShim_netmaskUnknown = (int)PCAP_NETMASK_UNKNOWN;

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int CPcapShim_pinCurrentThread(int cpu);

/// Joins the socket behind a live pcap handle to a PACKET_FANOUT group
/// (hash mode, defragmenting). Returns 0 or an errno value.
int CPcapShim_joinFanout(pcap_t *handle, uint16_t groupID);

/// Number of CPUs the process may run on.
int CPcapShim_availableCPUs(void);

/// prctl(PR_SET_KEEPCAPS, on): keep permitted capabilities across setuid.
/// Returns 0 or an errno value.
int CPcapShim_setKeepCapabilities(int on);

/// prctl(PR_SET_NO_NEW_PRIVS, 1): no exec can ever gain privileges again.
/// Returns 0 or an errno value.
int CPcapShim_setNoNewPrivileges(void);

/// capset(2) for the calling thread (Linux capabilities are per thread:
/// call it on every thread that needs them, or before starting threads): effective = permitted = `keep` (a bit mask of CAP_*
/// numbers below 64), inheritable = 0. Returns 0 or an errno value.
int CPcapShim_setCapabilities(uint64_t keep);

/// capget(2): the effective set as a bit mask, or UINT64_MAX on failure.
uint64_t CPcapShim_effectiveCapabilities(void);

static const int CPcapShim_capNetRaw = 13;   /* CAP_NET_RAW */

#endif
