import CPcapShim

/// What identifies a capture's contents, whatever the file is called: its
/// packet and byte counts, first and last timestamps, and a hash of its first
/// records. `replay --db` stores it with an import so the same capture is
/// never counted twice (docs/storage.md, "Imports").
public struct CaptureFingerprint: Sendable, Hashable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public var firstTimestampNanos: Int64 = 0
    public var lastTimestampNanos: Int64 = 0
    /// FNV-1a (64 bit) over the timestamp, lengths and captured bytes of the
    /// first `OfflineCapture.fingerprintRecords` records.
    public var firstRecordsHash: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}

    mutating func hash(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes { firstRecordsHash = (firstRecordsHash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    }
}

extension OfflineCapture {
    /// Records whose contents go into `CaptureFingerprint.firstRecordsHash`.
    public static let fingerprintRecords = 1024

    /// Reads every record through libpcap (nothing decoded) for the
    /// fingerprint. Stops at a damaged record: the replay reports it.
    public func fingerprint() -> CaptureFingerprint {
        var f = CaptureFingerprint()
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        var first = true
        while pcap_next_ex(handle, &header, &data) == 1, let h = header, let d = data {
            // tv_usec holds nanoseconds: the handle was opened with nanosecond precision.
            let ts = Self.instant(seconds: Self.unsigned(h.pointee.ts.tv_sec), nanos: Int64(h.pointee.ts.tv_usec))
            if ts != Self.invalidTimestamp {
                if first { f.firstTimestampNanos = ts; f.lastTimestampNanos = ts; first = false }
                f.firstTimestampNanos = min(f.firstTimestampNanos, ts)
                f.lastTimestampNanos = max(f.lastTimestampNanos, ts)
            }
            if f.packets < UInt64(Self.fingerprintRecords) {
                var fields = (ts, UInt64(h.pointee.caplen) << 32 | UInt64(h.pointee.len))
                withUnsafeBytes(of: &fields) { f.hash($0) }
                // Safe: libpcap guarantees `caplen` bytes at `d` until the next call.
                f.hash(UnsafeRawBufferPointer(start: d, count: Int(h.pointee.caplen)))
            }
            f.packets &+= 1
            f.bytes &+= UInt64(h.pointee.len)
        }
        return f
    }
}
