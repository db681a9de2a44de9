import CPcapShim

/// What identifies a capture's contents, whatever the file is called: its
/// packet and byte counts, first and last timestamps, and a hash of its first
/// records. `replay --db` stores it with an import so the same capture is
/// never counted twice (docs/storage.md, "Imports").
///
/// A copy taken while the capture was still being written is a *prefix* of
/// the finished file, which is an *extension* of the copy: the two share
/// `identity` (the file header and first record), and `recordsHash(at: n)` of
/// the longer one equals the shorter one's `recordsHash` over its `n`
/// records, so the store can count only the records it has not counted.
public struct CaptureFingerprint: Sendable, Hashable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public var firstTimestampNanos: Int64 = 0
    public var lastTimestampNanos: Int64 = 0
    /// FNV-1a (64 bit) over the timestamp, lengths and captured bytes of the
    /// first `OfflineCapture.fingerprintRecords` records.
    public var firstRecordsHash: UInt64 = Self.fnvBasis
    /// The file's link type and snapshot length and its first record (time,
    /// lengths, captured bytes): the same for every prefix or extension.
    public var identity: UInt64 = Self.fnvBasis
    /// Over every record read, in order: time and lengths (what a prefix and
    /// its extension share record for record).
    public var recordsHash: UInt64 = Self.fnvBasis
    /// `recordsHash` after the record counts asked for (`fingerprint(checkpoints:)`).
    public var checkpoints: [UInt64: UInt64] = [:]
    public init() {}

    static let fnvBasis: UInt64 = 0xCBF2_9CE4_8422_2325

    static func fnv(_ h: inout UInt64, _ bytes: UnsafeRawBufferPointer) {
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    }

    mutating func hash(_ bytes: UnsafeRawBufferPointer) { Self.fnv(&firstRecordsHash, bytes) }

    /// `recordsHash` over the first `n` records, when `n` was a checkpoint or is every record read.
    public func recordsHash(at n: UInt64) -> UInt64? { n == packets ? recordsHash : checkpoints[n] }

    /// Two fingerprints are the same capture whatever checkpoints each kept.
    public static func == (a: Self, b: Self) -> Bool {
        (a.packets, a.bytes, a.firstTimestampNanos, a.lastTimestampNanos) == (b.packets, b.bytes, b.firstTimestampNanos, b.lastTimestampNanos)
            && (a.firstRecordsHash, a.identity, a.recordsHash) == (b.firstRecordsHash, b.identity, b.recordsHash)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(packets); hasher.combine(identity); hasher.combine(recordsHash)
    }
}

extension OfflineCapture {
    /// Records whose contents go into `CaptureFingerprint.firstRecordsHash`.
    public static let fingerprintRecords = 1024

    /// Reads every record through libpcap (nothing decoded) for the
    /// fingerprint, keeping `recordsHash` after each record count in
    /// `checkpoints`. Stops at a damaged record: the replay reports it.
    /// `records` stops the read early (1: only `identity` is wanted).
    public func fingerprint(checkpoints wanted: Set<UInt64> = [], records limit: UInt64 = .max) -> CaptureFingerprint {
        var f = CaptureFingerprint()
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        var first = true
        var file = (Int64(linkType.rawValue), Int64(pcap_snapshot(handle)))
        withUnsafeBytes(of: &file) { CaptureFingerprint.fnv(&f.identity, $0) }
        while f.packets < limit, pcap_next_ex(handle, &header, &data) == 1, let h = header, let d = data {
            // tv_usec holds nanoseconds: the handle was opened with nanosecond precision.
            let ts = Self.instant(seconds: Self.unsigned(h.pointee.ts.tv_sec), nanos: Int64(h.pointee.ts.tv_usec))
            if ts != Self.invalidTimestamp {
                if first { f.firstTimestampNanos = ts; f.lastTimestampNanos = ts; first = false }
                f.firstTimestampNanos = min(f.firstTimestampNanos, ts)
                f.lastTimestampNanos = max(f.lastTimestampNanos, ts)
            }
            // The raw fields, valid or not: they are what the file holds.
            var fields = (Int64(h.pointee.ts.tv_sec), Int64(h.pointee.ts.tv_usec), UInt64(h.pointee.caplen) << 32 | UInt64(h.pointee.len))
            withUnsafeBytes(of: &fields) { CaptureFingerprint.fnv(&f.recordsHash, $0) }
            // Safe: libpcap guarantees `caplen` bytes at `d` until the next call.
            let captured = UnsafeRawBufferPointer(start: d, count: Int(h.pointee.caplen))
            if f.packets == 0 {
                withUnsafeBytes(of: &fields) { CaptureFingerprint.fnv(&f.identity, $0) }
                CaptureFingerprint.fnv(&f.identity, captured)
            }
            if f.packets < UInt64(Self.fingerprintRecords) {
                // As stores written before impossible times were recognised hold it.
                let raw = Self.unsigned(h.pointee.ts.tv_sec) &* 1_000_000_000 &+ Int64(h.pointee.ts.tv_usec)
                var exact = (raw, UInt64(h.pointee.caplen) << 32 | UInt64(h.pointee.len))
                withUnsafeBytes(of: &exact) { f.hash($0) }
                f.hash(captured)
            }
            f.packets &+= 1
            f.bytes &+= UInt64(h.pointee.len)
            if wanted.contains(f.packets) { f.checkpoints[f.packets] = f.recordsHash }
        }
        return f
    }

    /// Reads and drops up to `n` records before `read` counts the rest (the
    /// part of a capture an earlier import counted). Only for a capture read
    /// by libpcap (`OfflineReader.libpcap`), whose position is libpcap's.
    /// - Returns: the records dropped; fewer than `n` at the end or at damage.
    public func skipRecords(_ n: UInt64) -> UInt64 {
        precondition(buffered == nil && pcapng == nil, "skipRecords needs a capture read by libpcap")
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        var skipped: UInt64 = 0
        while skipped < n, pcap_next_ex(handle, &header, &data) == 1 { skipped += 1 }
        return skipped
    }
}
