/* The libpcap read floor: open a capture and read every record with
 * pcap_next_ex, summing wire lengths, and nothing else. What FlowMeter's
 * per-packet cost is measured against (scripts/callgrind_per_packet.sh). */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: pcap_floor FILE\n"); return 2; }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, err);
    if (!p) { fprintf(stderr, "%s\n", err); return 1; }
    struct pcap_pkthdr *h; const u_char *d;
    unsigned long long packets = 0, bytes = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &d)) == 1) { packets++; bytes += h->len; }
    printf("%llu packets %llu bytes\n", packets, bytes);
    pcap_close(p);
    return rc == PCAP_ERROR ? 1 : 0;
}
