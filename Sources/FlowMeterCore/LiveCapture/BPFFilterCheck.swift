import CPcapShim

/// Compiles a BPF filter expression without a live handle, so a typo in
/// `bpf_filter` is a configuration error at start rather than a capture that
/// never opens. Ethernet is the link type the agent captures on.
public enum BPFFilterCheck {
    /// libpcap's message when `expression` does not compile; nil when it does.
    public static func problem(_ expression: String, snaplen: Int = 128) -> String? {
        guard let h = pcap_open_dead(1 /* DLT_EN10MB */, Int32(snaplen)) else { return "libpcap could not make a handle" }
        defer { pcap_close(h) }
        var program = bpf_program()
        guard pcap_compile(h, &program, expression, 1, UInt32(bitPattern: CPcapShim_netmaskUnknown)) == 0 else {
            return String(cString: pcap_geterr(h))
        }
        pcap_freecode(&program)
        return nil
    }
}
