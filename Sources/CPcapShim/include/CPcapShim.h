// CPcapShim: a thin, prefixed C surface over libpcap for what Swift cannot
// import directly (macros). No logic lives here; Linux-only calls (affinity,
// capabilities, PACKET_FANOUT, prefetch, SIMD scans) are in CLinuxShim.
#ifndef CPCAPSHIM_H
#define CPCAPSHIM_H

#include <pcap/pcap.h>

/// PCAP_ERRBUF_SIZE is a macro; Swift sees this constant instead.
static const int CPcapShim_errbufSize = PCAP_ERRBUF_SIZE;
static const int CPcapShim_tstampPrecisionNano = PCAP_TSTAMP_PRECISION_NANO;
static const int CPcapShim_netmaskUnknown = (int)PCAP_NETMASK_UNKNOWN;

#endif
