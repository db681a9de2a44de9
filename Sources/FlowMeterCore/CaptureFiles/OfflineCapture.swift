import CPcapShim
#if canImport(Glibc)
import Glibc
#endif

/// Why a capture could not be read (all of it). Environmental, so thrown.
public enum CaptureError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case notReadable(path: String, reason: String)
    case notACapture(path: String, reason: String)
    /// Records were read and counted, then the file ended mid-record or was damaged.
    case cutShort(path: String, reason: String, packetsCounted: UInt64)
    case interface(name: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): return "\(p): no such file"
        case .notReadable(let p, let r): return "\(p): cannot be read: \(r)"
        case .notACapture(let p, let r): return "\(p): not a pcap or pcapng capture: \(r)"
        case .cutShort(let p, let r, let n):
            return "\(p): capture is cut short or damaged after \(n) packets (\(r)); those packets were counted"
        case .interface(let n, let r): return "interface \(n): \(r)"
        }
    }
}

/// What one read of a capture saw, counted by the reader itself so the
/// invariant "categories + reasons = records read" is checked against an
/// independent count.
public struct ReadTotals: Sendable, Equatable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public var capturedBytes: UInt64 = 0
    public var firstTimestampNanos: Int64? = nil
    public var lastTimestampNanos: Int64? = nil
    public init() {}
    public static func += (a: inout ReadTotals, b: ReadTotals) {
        a.packets += b.packets
        a.bytes += b.bytes
        a.capturedBytes += b.capturedBytes
        if let f = b.firstTimestampNanos { a.firstTimestampNanos = min(a.firstTimestampNanos ?? f, f) }
        if let l = b.lastTimestampNanos { a.lastTimestampNanos = max(a.lastTimestampNanos ?? l, l) }
    }
}

/// Receives each decoded packet. Generic, so the compiler specializes the
/// read loop for each sink and the hot path has no dynamic dispatch.
public protocol PacketSink {
    mutating func consume(_ summary: PacketSummary)
    /// Decodes `captured` with `decoder` and takes the summary, returning
    /// it. A sink with memory of its own decodes straight into it (the
    /// replay pipeline); the others decode a value and `consume` it.
    mutating func decode(_ captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos: Int64,
                         with decoder: inout PacketDecoder) -> PacketSummary
}

extension PacketSink {
    @inline(__always)
    public mutating func decode(_ captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos: Int64,
                                with decoder: inout PacketDecoder) -> PacketSummary {
        let summary = decoder.decode(captured, wireLength: wireLength, timestampNanos: timestampNanos)
        consume(summary)
        return summary
    }
}

/// Which code reads the records of a capture file.
public enum OfflineReader: String, Sendable, CaseIterable {
    /// `BufferedPcapReader` when the file allows it (a regular file in classic
    /// pcap 2.4, micro- or nanosecond, either byte order, of a link type whose
    /// records libpcap hands over unchanged), `PcapngReader` for a regular
    /// pcapng file on the same terms; libpcap for everything else.
    case automatic
    /// libpcap's `pcap_next_ex` for every record.
    case libpcap
}

/// A pcap or pcapng file opened through libpcap (which handles both formats,
/// both byte orders and micro/nanosecond stamps), read as nanoseconds.
///
/// libpcap always opens the file and validates its header. Records of a plain
/// classic pcap file are then read by `BufferedPcapReader` (see there why),
/// and the blocks of a pcapng file by `PcapngReader`, unless `.libpcap` was
/// asked for; an odd classic record is still handed to libpcap.
public final class OfflineCapture {
    public let path: String
    public let linkType: LinkType
    public let fileSize: Int64
    let handle: OpaquePointer
    /// Set when the records are read by the buffered reader rather than by libpcap.
    let buffered: BufferedPcapReader?
    /// Set when a pcapng file's records are read by FlowMeter's own reader
    /// (cleared if it hands the file back to libpcap).
    var pcapng: PcapngReader?
    /// What the last `read` counted, kept when it ended in an error.
    public private(set) var lastTotals = ReadTotals()

    /// Whether `read` uses the buffered classic-pcap reader (false: libpcap).
    public var usesBufferedReader: Bool { buffered != nil }
    /// Whether `read` uses FlowMeter's own pcapng reader.
    public var usesPcapngReader: Bool { pcapng != nil }
    /// Whether the pcapng reader has read past what libpcap 1.10 stops at (an
    /// interface of another link type or snapshot, a section in the other byte
    /// order); until then it counts exactly as libpcap does (the fuzz target
    /// `pcapng` holds it to that).
    public var readPastLibpcapsLimits: Bool { pcapng?.beyondLibpcap ?? false }
    /// Which code reads the records: "buffered", "pcapng" or "libpcap".
    public var readerName: String { buffered != nil ? "buffered" : pcapng != nil ? "pcapng" : "libpcap" }

    public convenience init(path: String, reader: OfflineReader = .automatic) throws(CaptureError) {
        try self.init(path: path, reader: reader, bufferCapacity: BufferedPcapReader.defaultCapacity)
    }

    /// - Parameter bufferCapacity: the buffered reader's buffer (tests use small
    ///   ones so that records cross its end).
    init(path: String, reader: OfflineReader, bufferCapacity: Int) throws(CaptureError) {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { throw .fileNotFound(path: path) }
            throw .notReadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw .notReadable(path: path, reason: "is a directory") }
        fileSize = Int64(st.st_size)
        var errbuf = [CChar](repeating: 0, count: Int(CPcapShim_errbufSize))
        let h = pcap_open_offline_with_tstamp_precision(path, UInt32(CPcapShim_tstampPrecisionNano), &errbuf)
        guard let h else {
            let message = errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if access(path, R_OK) != 0 { throw .notReadable(path: path, reason: message) }
            throw .notACapture(path: path, reason: message)
        }
        handle = h
        linkType = LinkType(rawValue: pcap_datalink(h))
        buffered = reader == .automatic ? BufferedPcapReader(eligible: h, capacity: bufferCapacity) : nil
        if reader == .automatic && buffered == nil {
            pcapng = PcapngReader(eligible: h, linkType: linkType, capacity: bufferCapacity)
        }
    }

    deinit { pcap_close(handle) }

    /// Bytes of the file consumed so far (for progress).
    public var bytesConsumed: Int64 {
        if let buffered { return buffered.consumedOffset }
        if let pcapng { return pcapng.consumedOffset }
        guard let f = pcap_file(handle) else { return 0 }
        return Int64(ftello(f))
    }

    /// Reads every record, decodes it and hands the summary to `sink`. Reading
    /// stops at the end of the file or at the first damaged record; what was
    /// read before is counted either way, and the damage is thrown afterwards.
    public func read<S: PacketSink>(
        into sink: inout S, decoder: inout PacketDecoder,
        limit: UInt64 = .max,
        progress: ((OfflineCapture, ReadTotals) -> Void)? = nil
    ) throws(CaptureError) -> ReadTotals {
        if let buffered {
            // Two specializations, so the per-record byte-order choice is made once per file.
            if buffered.swapped {
                return try readBuffered(buffered, SwappedRecordOrder.self, into: &sink, decoder: &decoder,
                                        limit: limit, progress: progress)
            }
            return try readBuffered(buffered, HostRecordOrder.self, into: &sink, decoder: &decoder,
                                    limit: limit, progress: progress)
        }
        if let own = pcapng {
            if let totals = try readPcapng(own, into: &sink, decoder: &decoder, limit: limit, progress: progress) {
                return totals
            }
            pcapng = nil  // handed back before any record: libpcap reads on from where it opened the file
        }
        var totals = ReadTotals()
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        let progressMask: UInt64 = (1 << 20) - 1
        // pcap_next_ex called directly rather than through `nextRecordFromLibpcap`:
        // this is the floor other readers are measured against, so it carries
        // nothing but the call.
        while totals.packets < limit {
            let rc = pcap_next_ex(handle, &header, &data)
            if rc == 1, let h = header, let d = data {
                Self.deliver(h, d, totals: &totals, decoder: &decoder, sink: &sink)
                if let progress, totals.packets & progressMask == 0 { progress(self, totals) }
            } else if rc == -2 {
                break
            } else if rc == 0 {
                continue  // live-capture timeout; never for files
            } else {
                throw damaged(totals, String(cString: pcap_geterr(handle)))
            }
        }
        return finish(totals)
    }

    /// One step of libpcap's reader.
    enum LibpcapRecord {
        /// Valid until the next call into libpcap.
        case record(UnsafePointer<pcap_pkthdr>, UnsafePointer<UInt8>)
        case end
        case damaged(String)
    }

    /// One record from libpcap, for the buffered reader's odd records.
    func nextRecordFromLibpcap() -> LibpcapRecord {
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        while true {
            let rc = pcap_next_ex(handle, &header, &data)
            if rc == 1, let h = header, let d = data { return .record(h, d) }
            if rc == -2 { return .end }
            if rc == 0 { continue }  // live-capture timeout; never for files
            return .damaged(String(cString: pcap_geterr(handle)))
        }
    }

    /// A record header's seconds as the format defines them, an unsigned
    /// 32-bit field: libpcap 1.10.3 copies host-order classic pcap fields
    /// into signed ones, so 2^31 s and later (after 2038) arrive negative, as
    /// if before 1970. Values no 32-bit field gives (pcapng) pass as they are.
    @inline(__always)
    static func unsigned(_ v: Int) -> Int64 {
        v < 0 && v >= -0x8000_0000 ? Int64(v) &+ 0x1_0000_0000 : Int64(v)
    }

    /// The stamp of a record whose time no clock can mean: its record is
    /// counted as `timestamp_invalid` and never moves a clock or a bucket.
    public static let invalidTimestamp = Int64.min

    /// Whole seconds whose nanoseconds (plus a fraction) still fit in an `Int64`: up to 2262.
    static let maxSeconds: UInt64 = 9_223_372_035

    /// `seconds` and `nanos` (the fraction, in nanoseconds) as nanoseconds
    /// since 1970, or `invalidTimestamp` when the fraction is not below one
    /// second or the instant lies before 1970 or past `maxSeconds`. The
    /// unsigned compares cover both signs and compile to a conditional move.
    @inline(__always)
    static func instant(seconds: Int64, nanos: Int64) -> Int64 {
        UInt64(bitPattern: seconds) <= maxSeconds && UInt64(bitPattern: nanos) < 1_000_000_000
            ? seconds &* 1_000_000_000 &+ nanos : invalidTimestamp
    }

    /// Counts, decodes and hands on one record libpcap read.
    @inline(__always)
    static func deliver<S: PacketSink>(
        _ h: UnsafePointer<pcap_pkthdr>, _ d: UnsafePointer<UInt8>,
        totals: inout ReadTotals, decoder: inout PacketDecoder, sink: inout S
    ) {
        // tv_usec holds nanoseconds: the handle was opened with nanosecond precision.
        let ts = instant(seconds: unsigned(h.pointee.ts.tv_sec), nanos: Int64(h.pointee.ts.tv_usec))
        // Safe: libpcap guarantees `caplen` bytes at `d` until the next call.
        deliver(UnsafeRawPointer(d), caplen: h.pointee.caplen, wire: h.pointee.len, timestampNanos: ts,
                totals: &totals, decoder: &decoder, sink: &sink)
    }

    /// The one place a record is counted, decoded and handed on, whichever
    /// reader read it. `data` holds `caplen` bytes for the duration of the call.
    @inline(__always) @discardableResult
    static func deliver<S: PacketSink>(
        _ data: UnsafeRawPointer, caplen: UInt32, wire: UInt32, timestampNanos ts: Int64,
        totals: inout ReadTotals, decoder: inout PacketDecoder, sink: inout S
    ) -> PacketSummary {
        totals.packets &+= 1
        totals.bytes &+= UInt64(wire)
        // A record claiming fewer bytes on the wire than it holds (orig_len <
        // caplen) is damaged: what was captured of it is at most its wire length.
        totals.capturedBytes &+= UInt64(min(caplen, wire))
        guard ts != invalidTimestamp else { return deliverWithoutTime(wire: wire, sink: &sink) }
        if totals.firstTimestampNanos == nil { totals.firstTimestampNanos = ts }
        totals.lastTimestampNanos = ts
        return sink.decode(UnsafeRawBufferPointer(start: data, count: Int(caplen)), wireLength: wire,
                           timestampNanos: ts, with: &decoder)
    }

    /// A record with an impossible time: counted under its reason, not
    /// decoded (nothing in a record that says it came before 1970 can be
    /// trusted) and kept out of the first and last times.
    @inline(never)
    static func deliverWithoutTime<S: PacketSink>(wire: UInt32, sink: inout S) -> PacketSummary {
        var s = PacketSummary()
        s.wireLength = wire
        s.timestampNanos = invalidTimestamp
        s.outcome = .failed
        s.failure = .timestampInvalid
        sink.consume(s)
        return s
    }

    /// Keeps what a read counted, for `lastTotals`.
    func finish(_ totals: ReadTotals) -> ReadTotals {
        lastTotals = totals
        return totals
    }

    /// Keeps what a read counted before the damage, and names it.
    func damaged(_ totals: ReadTotals, _ message: String) -> CaptureError {
        lastTotals = totals
        return .cutShort(path: path, reason: Self.explainDamage(message, firstLinkType: linkType),
                         packetsCounted: totals.packets)
    }

    /// The libpcap floor: every record read with `pcap_next_ex` and nothing
    /// else done with it. Benchmarks compare the pipeline against this.
    public func readFloor() -> ReadTotals {
        var totals = ReadTotals()
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        while pcap_next_ex(handle, &header, &data) == 1 {
            totals.packets &+= 1
            totals.bytes &+= UInt64(header!.pointee.len)
        }
        return totals
    }
}
