import FlowMeterCore
#if canImport(Glibc)
import Glibc
#endif

/// A capture file of arbitrary bytes read by libpcap alone (pcap and
/// pcapng, both byte orders), then decoded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcapLibpcap(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzFile.read(data, size, reader: .libpcap)
}


struct CountingSink: PacketSink {
    var packets: UInt64 = 0
    mutating func consume(_ s: PacketSummary) { packets &+= 1 }
}

enum FuzzFile {
    /// One file per fuzzing process, rewritten for each input (libpcap reads a path).
    static let path = "/tmp/flowmeter-fuzz-\(getpid()).pcap"

    static func read(_ data: UnsafePointer<UInt8>, _ size: Int, reader: OfflineReader) -> CInt {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return 0 }
        let written = write(fd, data, size)
        close(fd)
        guard written == size else { return 0 }
        guard let capture = try? OfflineCapture(path: path, reader: reader) else { return 0 }
        var decoder = PacketDecoder(linkType: capture.linkType, fragmentCacheSlots: 16)
        var sink = CountingSink()
        let totals = (try? capture.read(into: &sink, decoder: &decoder)) ?? capture.lastTotals
        // What the reader counted is what it handed on.
        precondition(totals.packets == sink.packets, "read \(totals.packets) records, handed on \(sink.packets)")
        precondition(totals.capturedBytes <= totals.bytes, "captured bytes exceed wire bytes")
        return 0
    }
}
