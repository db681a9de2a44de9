import Foundation
import Testing
import FlowMeterCoreTestSupport
@testable import FlowMeterCore

/// What one read of a capture produced, record by record (as a digest of every
/// summary the decoder made), so that two readers can be compared exactly.
struct ReadOutcome: Equatable, CustomStringConvertible {
    var totals: ReadTotals
    var digest: Int
    var error: CaptureError?
    var bytesConsumed: Int64

    var description: String {
        "\(totals.packets) packets, \(totals.bytes) bytes, \(totals.capturedBytes) captured, "
            + "ts \(String(describing: totals.firstTimestampNanos))…\(String(describing: totals.lastTimestampNanos)), "
            + "error \(error.map { "\($0)" } ?? "none"), consumed \(bytesConsumed)"
    }
}

/// Mixes every field of every summary, in order, into one hash.
struct DigestSink: PacketSink {
    var hasher = Hasher()
    mutating func consume(_ s: PacketSummary) {
        hasher.combine(s.timestampNanos)
        hasher.combine(s.src)
        hasher.combine(s.dst)
        hasher.combine(s.wireLength)
        hasher.combine(s.payloadLength)
        hasher.combine(s.srcPort)
        hasher.combine(s.dstPort)
        hasher.combine(s.proto)
        hasher.combine(s.tcpFlags)
        hasher.combine(s.family)
        hasher.combine(s.outcome)
        hasher.combine(s.failure)
        hasher.combine(s.linkSaysOutgoing)
        hasher.combine(s.linkSaysIncoming)
        hasher.combine(s.transportHeaderPresent)
    }
}

enum Readers {
    /// What differs between a replay of `path` through libpcap and through the
    /// automatic reader (totals, counters, errors, refused link types); nil if nothing.
    static func replayDisagreement(_ path: String, name: String) -> String? {
        let a = replayOnce(files: [path], model: HostModel(), reader: .libpcap)
        let b = replayOnce(files: [path], model: HostModel(), reader: .automatic)
        guard a.totals != b.totals || a.counters != b.counters || a.errors != b.errors
              || a.unsupportedLinkTypes != b.unsupportedLinkTypes else { return nil }
        return "\(name): replay differs: \(a.totals) \(a.errors) / \(b.totals) \(b.errors)"
    }

    /// Reads `path` whole with `reader` (and the buffered reader's buffer of `capacity` bytes).
    static func read(_ path: String, _ reader: OfflineReader,
                     capacity: Int = BufferedPcapReader.defaultCapacity) -> (ReadOutcome?, buffered: Bool) {
        guard let capture = try? OfflineCapture(path: path, reader: reader, bufferCapacity: capacity) else { return (nil, false) }
        var decoder = PacketDecoder(linkType: capture.linkType)
        var sink = DigestSink()
        var outcome = ReadOutcome(totals: ReadTotals(), digest: 0, error: nil, bytesConsumed: 0)
        do {
            outcome.totals = try capture.read(into: &sink, decoder: &decoder)
        } catch {
            outcome.error = error
            outcome.totals = capture.lastTotals
        }
        outcome.digest = sink.hasher.finalize()
        outcome.bytesConsumed = capture.bytesConsumed
        return (outcome, capture.usesBufferedReader)
    }
}

/// Writes classic pcap files with exactly the bytes a test asks for.
struct CraftedPcap {
    var bigEndian = false
    var nanoseconds = false
    var magic: UInt32? = nil
    var version: (major: UInt16, minor: UInt16) = (2, 4)
    var snaplen: UInt32 = 65535
    var linkType: UInt32 = 1
    private(set) var records: [UInt8] = []
    private(set) var count = 0

    var bytes: [UInt8] {
        var h: [UInt8] = []
        put32(&h, magic ?? (nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4))
        put16(&h, version.major); put16(&h, version.minor)
        put32(&h, 0); put32(&h, 0); put32(&h, snaplen); put32(&h, linkType)
        return h + records
    }

    private func put16(_ b: inout [UInt8], _ v: UInt16) {
        b += bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)]
    }
    private func put32(_ b: inout [UInt8], _ v: UInt32) {
        let le = (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) }
        b += bigEndian ? le.reversed() : le
    }

    /// A record header; `data` follows unless `caplen` says otherwise.
    mutating func record(seconds: UInt32 = 1_700_000_000, fraction: UInt32 = 0, caplen: UInt32? = nil,
                         wire: UInt32? = nil, data: [UInt8]) {
        put32(&records, seconds); put32(&records, fraction)
        put32(&records, caplen ?? UInt32(data.count)); put32(&records, wire ?? UInt32(data.count))
        records += data
        count += 1
    }

    mutating func append(raw: [UInt8]) { records += raw }

    /// An Ethernet/IPv4/UDP frame of `size` bytes (at least 42), different for each `seed`.
    static func frame(size: Int, seed: Int) -> [UInt8] {
        var f = [UInt8](repeating: UInt8(truncatingIfNeeded: seed), count: max(size, 42))
        for i in 0..<12 { f[i] = UInt8(truncatingIfNeeded: seed &+ i) }
        f[12] = 0x08; f[13] = 0x00
        f[14] = 0x45; f[15] = 0
        let ipLength = f.count - 14
        f[16] = UInt8(ipLength >> 8); f[17] = UInt8(ipLength & 0xFF)
        f[20] = 0; f[21] = 0; f[22] = 64; f[23] = 17
        f[26] = 10; f[27] = 0; f[28] = UInt8(truncatingIfNeeded: seed >> 8); f[29] = UInt8(truncatingIfNeeded: seed)
        f[30] = 192; f[31] = 0; f[32] = 2; f[33] = UInt8(truncatingIfNeeded: seed &* 7)
        f[34] = 0x23; f[35] = 0x29; f[36] = UInt8(truncatingIfNeeded: seed >> 8); f[37] = UInt8(truncatingIfNeeded: seed)
        f[38] = UInt8((ipLength - 20) >> 8); f[39] = UInt8((ipLength - 20) & 0xFF)
        return f
    }

    func write(_ name: String) -> String {
        let path = makeTemporaryDirectory("crafted") + "/" + name
        precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
        return path
    }
}

/// Both readers must agree on every capture of the outside corpus (many
/// deliberately broken): same totals, counters, per-packet summaries, errors
/// (with libpcap's text) and the same number of packets counted before one.
@Suite struct ReaderAgreementTests {
    @Test func everyCorpusCaptureReadsIdenticallyThroughLibpcapAndTheBufferedReader() {
        let files = Repo.corpusFiles
        #expect(files.count > 800, "expected the corpus in Tests/Corpus/pcap")
        var disagreements: [String] = []
        var buffered = 0
        for path in files {
            let name = Repo.corpusName(path)
            if let d = Readers.replayDisagreement(path, name: name) { disagreements.append(d) }
            // Record by record, with the default buffer and with one so small that records cross its end all the time.
            let (reference, _) = Readers.read(path, .libpcap)
            let (large, usedBuffered) = Readers.read(path, .automatic)
            let (small, _) = Readers.read(path, .automatic, capacity: 333)
            if usedBuffered { buffered += 1 }
            if large != reference { disagreements.append("\(name): \(String(describing: large)) ≠ libpcap \(String(describing: reference))") }
            if small != reference { disagreements.append("\(name) (333-byte buffer): \(String(describing: small)) ≠ libpcap \(String(describing: reference))") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        // Most of the corpus is plain pcap: the comparison must have exercised the buffered reader.
        #expect(buffered > 600, "only \(buffered) files went through the buffered reader")
    }
}

/// Crafted files for each of libpcap's record rules, read by both readers.
@Suite struct BufferedPcapReaderTests {
    /// Reads with both readers, expects them to agree and the buffered one to have been used.
    func bothAgree(_ path: String, capacity: Int = BufferedPcapReader.defaultCapacity,
                   sourceLocation: SourceLocation = #_sourceLocation) -> ReadOutcome? {
        let (reference, _) = Readers.read(path, .libpcap)
        let (outcome, buffered) = Readers.read(path, .automatic, capacity: capacity)
        #expect(buffered, "the buffered reader was not used", sourceLocation: sourceLocation)
        #expect(outcome == reference, sourceLocation: sourceLocation)
        return outcome
    }

    /// `records` Ethernet frames of the given sizes in turn, in a file set up by `c`
    /// (the byte order must be chosen before records are added).
    func plainFile(records: Int, sizes: [Int] = [60, 1514, 42, 590, 97, 1200, 333],
                   _ c: CraftedPcap = CraftedPcap()) -> CraftedPcap {
        var c = c
        for i in 0..<records {
            let f = CraftedPcap.frame(size: sizes[i % sizes.count], seed: i)
            c.record(seconds: 1_700_000_000 + UInt32(i), fraction: UInt32(i * 1000), wire: UInt32(f.count + 4), data: f)
        }
        return c
    }

    @Test func aFileWithOnlyItsHeaderEndsCleanlyWithNothingCounted() throws {
        let o = try #require(bothAgree(CraftedPcap().write("empty.pcap")))
        #expect(o.error == nil)
        #expect(o.totals == ReadTotals())
        #expect(o.bytesConsumed == 24)
    }

    @Test func aRecordHeaderCutShortIsLibpcapsTruncatedHeaderErrorAfterTheWholeRecordsAreCounted() throws {
        for cut in 1...15 {
            var c = plainFile(records: 3)
            c.append(raw: [UInt8](repeating: 0x11, count: cut))
            let o = try #require(bothAgree(c.write("cut-header-\(cut).pcap")))
            #expect(o.totals.packets == 3)
            #expect(o.error?.description.contains(
                "truncated dump file; tried to read 16 header bytes, only got \(cut)") == true, "\(o)")
            guard case .cutShort(_, _, let counted)? = o.error else { Issue.record("expected cutShort: \(o)"); continue }
            #expect(counted == 3)
        }
    }

    @Test func aRecordWhoseDataIsCutShortIsLibpcapsTruncatedDataError() throws {
        var c = plainFile(records: 2)
        c.record(caplen: 100, wire: 100, data: [UInt8](repeating: 0x22, count: 40))
        let path = c.write("cut-data.pcap")
        let o = try #require(bothAgree(path))
        #expect(o.totals.packets == 2)
        #expect(o.error == .cutShort(path: path, reason: "truncated dump file; tried to read 100 captured bytes, only got 40",
                                     packetsCounted: 2))
    }

    @Test func aRecordAboveTheSnapshotIsCutToTheSnapshotAndTheRestIsSkipped() throws {
        var c = CraftedPcap()
        c.snaplen = 100
        c.record(caplen: 200, wire: 300, data: CraftedPcap.frame(size: 200, seed: 1))
        c.record(data: CraftedPcap.frame(size: 80, seed: 2))
        let o = try #require(bothAgree(c.write("above-snapshot.pcap")))
        #expect(o.error == nil)
        #expect(o.totals.packets == 2)
        #expect(o.totals.capturedBytes == 100 + 80)
        #expect(o.totals.bytes == 300 + 80)
    }

    @Test func aRecordAboveTheSnapshotCutShortNamesTheBytesLibpcapTriedToRead() throws {
        for (have, message) in [(50, "tried to read 100 captured bytes, only got 50"),
                                (150, "tried to read 200 captured bytes, only got 150")] {
            var c = CraftedPcap()
            c.snaplen = 100
            c.record(data: CraftedPcap.frame(size: 60, seed: 1))
            c.record(caplen: 200, wire: 300, data: Array(CraftedPcap.frame(size: 200, seed: 2).prefix(have)))
            let o = try #require(bothAgree(c.write("above-snapshot-cut-\(have).pcap")))
            #expect(o.totals.packets == 1)
            #expect(o.error?.description.contains("truncated dump file; " + message) == true, "\(o)")
        }
    }

    @Test func aRecordAboveTheLinkTypesMaximumIsAnErrorNamingTheSnapshot() throws {
        for (snaplen, named) in [(UInt32(65535), 65535), (0, 262_144)] {
            var c = plainFile(records: 1)
            c.snaplen = snaplen
            c.record(caplen: 300_000, wire: 300_000, data: [UInt8](repeating: 0x33, count: 10))
            let o = try #require(bothAgree(c.write("above-maximum-\(snaplen).pcap")))
            #expect(o.totals.packets == 1)
            #expect(o.error?.description.contains(
                "invalid packet capture length 300000, bigger than snaplen of \(named)") == true, "\(o)")
        }
    }

    @Test func bigEndianAndNanosecondFilesReadSecondsWithTheTopBitSetAsAfter2038() throws {
        for bigEndian in [false, true] {
            for nanoseconds in [false, true] {
                var c = plainFile(records: 5, CraftedPcap(bigEndian: bigEndian, nanoseconds: nanoseconds))
                c.record(seconds: 0xFFFF_FFFF, fraction: 0xFFFF_FFFF, data: CraftedPcap.frame(size: 64, seed: 9))
                c.record(seconds: 0x8000_0000, fraction: 999, data: CraftedPcap.frame(size: 64, seed: 10))
                let name = "order-\(bigEndian ? "be" : "le")-\(nanoseconds ? "ns" : "us").pcap"
                let o = try #require(bothAgree(c.write(name)))
                #expect(o.error == nil)
                #expect(o.totals.packets == 7)
                let scale: Int64 = nanoseconds ? 1 : 1000
                let first: Int64 = 1_700_000_000 * 1_000_000_000
                #expect(o.totals.firstTimestampNanos == first)
                // Seconds are unsigned in either byte order: 2^31 s is 2038-01-19, not 1901.
                #expect(o.totals.lastTimestampNanos == 0x8000_0000 * 1_000_000_000 + 999 * scale, "\(name)")
            }
        }
    }

    @Test func aRecordClaimingLessOnTheWireThanItHoldsNeverMakesCapturedExceedBytes() throws {
        var c = plainFile(records: 3)
        c.record(caplen: 64, wire: 40, data: CraftedPcap.frame(size: 64, seed: 11))
        let o = try #require(bothAgree(c.write("orig-below-caplen.pcap")))
        #expect(o.totals.packets == 4)
        #expect(o.totals.capturedBytes <= o.totals.bytes, "\(o)")
    }

    @Test func recordsCrossingTheBufferEndAreCarriedOverWhateverTheBufferSize() throws {
        // Every capacity from a bare record header up to past the largest record,
        // so each record meets the buffer's end at every offset of its header and data.
        let sizes = [42, 43, 60, 61, 64, 97, 128, 150, 199, 256, 333]
        let path = plainFile(records: 120, sizes: sizes).write("carry-over.pcap")
        let (reference, _) = Readers.read(path, .libpcap)
        #expect(reference?.totals.packets == 120)
        for capacity in 16...400 {
            let (o, buffered) = Readers.read(path, .automatic, capacity: capacity)
            #expect(buffered)
            #expect(o == reference, "capacity \(capacity)")
        }
    }

    @Test func aRecordLargerThanTheBufferIsReadByLibpcapAndReadingGoesOn() throws {
        let path = plainFile(records: 30, sizes: [1514, 60, 9000, 42]).write("jumbo.pcap")
        let o = try #require(bothAgree(path, capacity: 4096))
        #expect(o.totals.packets == 30)
        #expect(o.error == nil)
    }

    @Test func readingStopsAtTheLimitAndCarriesOnFromThereWithTheSameBytesConsumed() throws {
        let path = plainFile(records: 50).write("limit.pcap")
        for capacity in [100, 2000, BufferedPcapReader.defaultCapacity] {
            var consumed: [Int64] = []
            var totals: [ReadTotals] = []
            for reader in OfflineReader.allCases {
                let capture = try OfflineCapture(path: path, reader: reader, bufferCapacity: capacity)
                var decoder = PacketDecoder(linkType: capture.linkType)
                var sink = DigestSink()
                var first = try capture.read(into: &sink, decoder: &decoder, limit: 17)
                consumed.append(capture.bytesConsumed)
                first += try capture.read(into: &sink, decoder: &decoder)
                #expect(capture.bytesConsumed == capture.fileSize)
                totals.append(first)
            }
            #expect(consumed[0] == consumed[1], "capacity \(capacity)")
            #expect(totals[0] == totals[1], "capacity \(capacity)")
            #expect(totals[0].packets == 50)
        }
    }

    @Test func aFileCutShortByAnotherProcessWhileItIsReadEndsAsCutShortNotACrash() throws {
        let c = plainFile(records: 40)
        let path = c.write("shrinking.pcap")
        let capture = try OfflineCapture(path: path, reader: .automatic, bufferCapacity: 256)
        #expect(capture.usesBufferedReader)
        var decoder = PacketDecoder(linkType: capture.linkType)
        var sink = DigestSink()
        let before = try capture.read(into: &sink, decoder: &decoder, limit: 10)
        // Cut the file in the middle of a later record, as a rotating writer might.
        #expect(truncate(path, off_t(c.bytes.count / 2 + 7)) == 0)
        do {
            let after = try capture.read(into: &sink, decoder: &decoder)
            Issue.record("expected cutShort, read \(after.packets) more packets")
        } catch {
            guard case .cutShort(_, let reason, let counted) = error else { Issue.record("\(error)"); return }
            #expect(reason.hasPrefix("truncated dump file"))
            #expect(before.packets + counted < 40)
        }
    }

    @Test func filesWhoseRecordsLibpcapRewritesOrWhoseFormatIsUnusualStayWithLibpcap() throws {
        func uses(_ c: CraftedPcap, _ name: String) throws -> Bool {
            let path = c.write(name)
            let (o, buffered) = Readers.read(path, .automatic)
            #expect(o == Readers.read(path, .libpcap).0, "\(name)")
            return buffered
        }
        var c = plainFile(records: 4)
        #expect(try uses(c, "plain.pcap"))
        c.magic = 0xA1B2_CD34  // Kuznetzov's modified format: longer record headers
        #expect(try !uses(c, "kuznetzov.pcap"))
        c.magic = nil
        c.version = (2, 3)  // caplen and len may be swapped
        #expect(try !uses(c, "v2.3.pcap"))
        c.version = (2, 4)
        for bigEndian in [false, true] {
            c = plainFile(records: 4, CraftedPcap(bigEndian: bigEndian))
            for dlt: UInt32 in [189, 220, 239] {
                c.linkType = dlt
                #expect(try !uses(c, "dlt-\(dlt)-\(bigEndian).pcap"))
            }
            for dlt: UInt32 in [113, 117, 276] {
                c.linkType = dlt
                #expect(try uses(c, "dlt-\(dlt)-\(bigEndian).pcap") == !bigEndian)
            }
        }
        let pcapng = try #require(Repo.corpusFiles.first { $0.hasSuffix(".pcapng") && (try? OfflineCapture(path: $0)) != nil })
        #expect(try OfflineCapture(path: pcapng).usesBufferedReader == false)
        #expect(try OfflineCapture(path: pcapng).usesPcapngReader)
        #expect(try OfflineCapture(path: c.write("asked.pcap"), reader: .libpcap).usesBufferedReader == false)
    }

    @Test func aCaptureReadFromAPipeStaysWithLibpcap() throws {
        let c = plainFile(records: 20)
        let fifo = makeTemporaryDirectory("fifo") + "/capture.pcap"
        #expect(mkfifo(fifo, 0o600) == 0)
        let bytes = Data(c.bytes)
        let writer = Thread {
            // Opening blocks until the reader opens its end.
            guard let handle = FileHandle(forWritingAtPath: fifo) else { return }
            handle.write(bytes)
            try? handle.close()
        }
        writer.start()
        let capture = try OfflineCapture(path: fifo)
        #expect(!capture.usesBufferedReader)
        var decoder = PacketDecoder(linkType: capture.linkType)
        var sink = DigestSink()
        let totals = try capture.read(into: &sink, decoder: &decoder)
        #expect(totals == Readers.read(c.write("pipe-reference.pcap"), .libpcap).0?.totals)
        #expect(totals.packets == 20)
    }

    @Test func theEngineAndTheSingleThreadedReplayCountTheSameWithEitherReader() throws {
        let path = plainFile(records: 500).write("engine.pcap")
        let model = HostModel()
        let reference = replayOnce(files: [path], model: model, reader: .libpcap)
        for reader in OfflineReader.allCases {
            let engine = ReplayEngine.replay(files: [path], model: model, workers: 2, flowTableCapacity: 1 << 16,
                                             reader: reader)
            #expect(engine.counters == reference.counters)
            #expect(engine.totals == reference.totals)
        }
    }
}

/// `--reader` on the command line.
@Suite struct ReaderCommandLineTests {
    /// The oracle host's configuration as command-line options.
    static var hostOptions: [String] {
        let oracle = GeneratedRelayHost.shared
        var options = (oracle.args["torrc"] as! [String]).flatMap { ["--torrc", oracle.path($0)] }
        if let consensus = oracle.args["consensus"] as? String { options += ["--consensus", oracle.path(consensus)] }
        if let config = oracle.args["config"] as? String { options += ["--config", oracle.path(config)] }
        return options
    }

    @Test func replayPrintsTheSameDocumentWithEitherReader() throws {
        let oracle = GeneratedRelayHost.shared
        let torrcs = Self.hostOptions
        var documents: [String] = []
        for reader in OfflineReader.allCases {
            let r = try runProcess(Repo.flowmeterBinary, ["replay", "--json", "--workers", "2", "--reader", reader.rawValue]
                                   + torrcs + [oracle.path("relay-host.pcap"), oracle.path("relay-host-ns-be.pcap")])
            #expect(r.status == 0, "\(r.stderr)")
            documents.append(r.stdout)
        }
        #expect(documents[0] == documents[1])
        let bad = try runProcess(Repo.flowmeterBinary, ["replay", "--reader", "mmap", oracle.path("relay-host.pcap")])
        #expect(bad.status != 0)
    }

    @Test func benchReportsTheOneWorkerPipelineWithTheLibpcapReaderBesideTheOtherStages() throws {
        let oracle = GeneratedRelayHost.shared
        let r = try runProcess(Repo.flowmeterBinary, ["bench", "--json", "--repeat", "1", "--workers", "2"]
                               + Self.hostOptions + [oracle.path("relay-host.pcap"), oracle.path("relay-host.pcapng")])
        #expect(r.status == 0, "\(r.stderr)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(reports.count == 2)
        let stages = reports.map { ($0["stages"] as! [[String: Any]]).map { "\($0["name"]!) by \($0["reader"]!)" } }
        #expect(stages[0] == ["libpcap floor by libpcap", "pipeline, 1 worker, libpcap reader by libpcap",
                              "pipeline, 1 worker by buffered", "pipeline, 2 workers by buffered"])
        // pcapng has its own reader: automatic means that one there, and the report says so.
        #expect(stages[1] == ["libpcap floor by libpcap", "pipeline, 1 worker, libpcap reader by libpcap",
                              "pipeline, 1 worker by pcapng", "pipeline, 2 workers by pcapng"])
    }
}
