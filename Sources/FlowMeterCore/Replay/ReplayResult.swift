import CPcapShim

/// What one capture file contributed to a replay.
public struct ReplayFileResult: Sendable {
    public var path: String
    public var linkType: LinkType?
    public var linkTypeName: String?
    public var totals: ReadTotals
    public var error: CaptureError?
    /// Records of this file the decoder refused as `link_type_unsupported`
    /// (not the empty ones, which count as `empty_record`).
    public var unsupportedPackets: UInt64 = 0
    public var unsupportedBytes: UInt64 = 0
    /// The same per link type, for a pcapng file whose interfaces have
    /// different link types (read by `PcapngReader`); empty otherwise.
    public var unsupportedByLinkType: [UnsupportedLinkType] = []
    /// Records at the start of the file left uncounted on purpose (an earlier
    /// import counted them); not in `totals`.
    public var skippedRecords: UInt64 = 0
}

extension ReplayFileResult {
    /// What the pcapng reader counted per link type, in place of the file-wide count.
    mutating func note(_ counted: [UnsupportedLinkType]) {
        unsupportedByLinkType = counted
        unsupportedPackets = counted.reduce(0) { $0 + $1.packets }
        unsupportedBytes = counted.reduce(0) { $0 + $1.bytes }
    }
}

/// Packets of a link type FlowMeter does not decode, per link type.
public struct UnsupportedLinkType: Sendable, Equatable {
    public var linkType: Int32
    public var name: String
    public var packets: UInt64
    public var bytes: UInt64
}

/// The result of replaying captures: counters plus what was read, per file.
public struct ReplayResult: Sendable {
    public var labels: [String]
    public var counters: CounterSnapshot
    public var totals = ReadTotals()
    public var files: [ReplayFileResult] = []
    public var unsupportedLinkTypes: [UnsupportedLinkType] = []

    public init(labels: [String], counters: CounterSnapshot) {
        self.labels = labels
        self.counters = counters
    }

    public var errors: [CaptureError] { files.compactMap(\.error) }

    /// Categories plus reasons equal exactly what was read.
    public var invariantHolds: Bool {
        counters.accountedPackets == totals.packets && counters.accountedBytes == totals.bytes
    }

    /// Adds one file's outcome, noting packets of an undecoded link type.
    mutating func record(_ file: ReplayFileResult) {
        totals += file.totals
        files.append(file)
        for u in file.unsupportedByLinkType {
            if let i = unsupportedLinkTypes.firstIndex(where: { $0.linkType == u.linkType }) {
                unsupportedLinkTypes[i].packets += u.packets
                unsupportedLinkTypes[i].bytes += u.bytes
            } else {
                unsupportedLinkTypes.append(u)
            }
        }
        if file.unsupportedByLinkType.isEmpty, let lt = file.linkType, !lt.isDecoded, file.unsupportedPackets > 0 {
            if let i = unsupportedLinkTypes.firstIndex(where: { $0.linkType == lt.rawValue }) {
                unsupportedLinkTypes[i].packets += file.unsupportedPackets
                unsupportedLinkTypes[i].bytes += file.unsupportedBytes
            } else {
                unsupportedLinkTypes.append(UnsupportedLinkType(
                    linkType: lt.rawValue, name: file.linkTypeName ?? "DLT_\(lt.rawValue)",
                    packets: file.unsupportedPackets, bytes: file.unsupportedBytes))
            }
        }
    }
}

extension LinkType {
    /// libpcap's name for the link type (e.g. "EN10MB"), for reports.
    public var pcapName: String {
        if let n = pcap_datalink_val_to_name(rawValue) { return String(cString: n) }
        return "DLT_\(rawValue)"
    }
}

/// Reading capture files into a sink: the one place a file's failures
/// become data on the result (`ReplayEngine` is the driver that uses it).
public enum Replay {
    /// Reads one file into `sink`, turning every failure into data on the result.
    /// - Parameter skipping: records at the start to read past uncounted
    ///   (then libpcap reads the file, as the fingerprint that chose them did).
    public static func readOne<S: PacketSink>(
        _ path: String, into sink: inout S, reader: OfflineReader = .automatic, skipping: UInt64 = 0,
        progress: ((String, OfflineCapture, ReadTotals) -> Void)? = nil
    ) -> ReplayFileResult {
        let capture: OfflineCapture
        do {
            capture = try OfflineCapture(path: path, reader: skipping > 0 ? .libpcap : reader)
        } catch {
            return ReplayFileResult(path: path, linkType: nil, linkTypeName: nil, totals: ReadTotals(), error: error)
        }
        var decoder = PacketDecoder(linkType: capture.linkType)
        var file = ReplayFileResult(path: path, linkType: capture.linkType, linkTypeName: capture.linkType.pcapName,
                                    totals: ReadTotals(), error: nil)
        if skipping > 0 { file.skippedRecords = capture.skipRecords(skipping) }
        let report = progress.map { p in { (c: OfflineCapture, t: ReadTotals) in p(path, c, t) } }
        // The pcapng reader counts what the decoder refused per interface, whatever their link types.
        if capture.usesPcapngReader && capture.linkType.isDecoded {
            read(capture, into: &sink, decoder: &decoder, progress: report, file: &file)
            if let counted = capture.pcapng?.unsupportedLinkTypes { file.note(counted) }
            return file
        }
        // A link type the decoder does not know: count what it refuses, so the
        // report's link_types list holds only records of that type it read.
        guard !capture.linkType.isDecoded else {
            read(capture, into: &sink, decoder: &decoder, progress: report, file: &file)
            return file
        }
        var counting = UnsupportedCounting(inner: sink)
        read(capture, into: &counting, decoder: &decoder, progress: report, file: &file)
        sink = counting.inner
        file.unsupportedPackets = counting.packets
        file.unsupportedBytes = counting.bytes
        if let counted = capture.pcapng?.unsupportedLinkTypes { file.note(counted) }
        return file
    }

    private static func read<S: PacketSink>(
        _ capture: OfflineCapture, into sink: inout S, decoder: inout PacketDecoder,
        progress: ((OfflineCapture, ReadTotals) -> Void)?, file: inout ReplayFileResult
    ) {
        do {
            file.totals = try capture.read(into: &sink, decoder: &decoder, progress: progress)
        } catch {
            file.error = error
            file.totals = capture.lastTotals
        }
    }
}

/// Passes every summary on, counting those refused as `link_type_unsupported`.
struct UnsupportedCounting<S: PacketSink>: PacketSink {
    var inner: S
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
    mutating func consume(_ summary: PacketSummary) {
        if summary.outcome == .failed && summary.failure == .linkTypeUnsupported {
            packets &+= 1
            bytes &+= UInt64(summary.wireLength)
        }
        inner.consume(summary)
    }
}
