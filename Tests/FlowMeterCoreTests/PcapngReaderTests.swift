import Foundation
import Testing
import FlowMeterCoreTestSupport
@testable import FlowMeterCore

/// Writes pcapng files with exactly the blocks a test asks for, each section
/// in its own byte order.
struct CraftedPcapng {
    private(set) var bytes: [UInt8] = []
    private(set) var records = 0
    private var bigEndian = false

    private func u16(_ v: UInt16) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    private func u32(_ v: UInt32) -> [UInt8] {
        let le = (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) }
        return bigEndian ? le.reversed() : le
    }
    private func u64(_ v: UInt64) -> [UInt8] {
        bigEndian ? u32(UInt32(v >> 32)) + u32(UInt32(v & 0xFFFF_FFFF)) : u32(UInt32(v & 0xFFFF_FFFF)) + u32(UInt32(v >> 32))
    }
    private static func padded(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }
    private func option(_ code: UInt16, _ value: [UInt8]) -> [UInt8] {
        u16(code) + u16(UInt16(value.count)) + Self.padded(value)
    }

    /// Any block: header, `body` (padded to 4), trailer.
    mutating func block(_ type: UInt32, _ body: [UInt8]) {
        let body = Self.padded(body)
        let length = UInt32(12 + body.count)
        bytes += u32(type) + u32(length) + body + u32(length)
    }

    /// A Section Header Block starting a section in the given byte order.
    mutating func section(bigEndian: Bool, comment: Bool = false) {
        self.bigEndian = bigEndian
        var body = u32(0x1A2B_3C4D) + u16(1) + u16(0) + u64(UInt64.max)
        if comment { body += option(1, Array("two link types".utf8)) + option(0, []) }
        block(0x0A0D_0D0A, body)
    }

    /// An Interface Description Block (`tsresol`: the option's byte; `tsoffset` in seconds).
    mutating func interface(_ linkType: UInt16, snaplen: UInt32 = 65535, tsresol: UInt8? = nil, tsoffset: Int64? = nil,
                            name: String? = nil) {
        var body = u16(linkType) + u16(0) + u32(snaplen)
        if let name { body += option(2, Array(name.utf8)) }
        if let tsresol { body += option(9, [tsresol]) }
        if let tsoffset { body += option(14, u64(UInt64(bitPattern: tsoffset))) }
        if name != nil || tsresol != nil || tsoffset != nil { body += option(0, []) }
        block(1, body)
    }

    mutating func enhanced(interface: UInt32, timestamp: UInt64, frame: [UInt8], wire: UInt32? = nil, comment: Bool = false) {
        var body = u32(interface) + u32(UInt32(timestamp >> 32)) + u32(UInt32(timestamp & 0xFFFF_FFFF))
            + u32(UInt32(frame.count)) + u32(wire ?? UInt32(frame.count)) + Self.padded(frame)
        if comment { body += option(1, Array("note".utf8)) + option(0, []) }
        block(6, body)
        records += 1
    }

    /// A Simple Packet Block: interface 0, no timestamp.
    mutating func simple(frame: [UInt8], wire: UInt32? = nil) {
        block(3, u32(wire ?? UInt32(frame.count)) + frame)
        records += 1
    }

    /// The obsolete Packet Block.
    mutating func packet(interface: UInt16, timestamp: UInt64, frame: [UInt8]) {
        block(2, u16(interface) + u16(0) + u32(UInt32(timestamp >> 32)) + u32(UInt32(timestamp & 0xFFFF_FFFF))
              + u32(UInt32(frame.count)) + u32(UInt32(frame.count)) + frame)
        records += 1
    }

    mutating func append(raw: [UInt8]) { bytes += raw }

    func write(_ name: String) -> String {
        let path = makeTemporaryDirectory("crafted-pcapng") + "/" + name
        precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
        return path
    }

    // Frames of the link types the tests use, all IPv4/UDP, different for each seed.
    static func ethernet(_ seed: Int, size: Int = 60) -> [UInt8] { CraftedPcap.frame(size: size, seed: seed) }
    static func raw(_ seed: Int) -> [UInt8] { Array(ethernet(seed, size: 74).dropFirst(14)) }
    static func sll(_ seed: Int) -> [UInt8] {
        [0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, UInt8(seed & 0xFF), 0, 0, 0x08, 0x00] + raw(seed)
    }
    static func radiotap(_ seed: Int) -> [UInt8] { [0, 0, 8, 0, 0, 0, 0, 0] + [UInt8](repeating: UInt8(seed & 0xFF), count: 24) }
}

/// FlowMeter's own pcapng reader (PcapngReader.swift): identical to libpcap
/// for every file of one link type, and a file of several counted whole.
@Suite struct PcapngReaderTests {
    /// Where the two readers legitimately differ on a corpus file, and why (none so far).
    static let knownDifferences: [String: String] = [:]

    @Test func everyCorpusPcapngReadsIdenticallyThroughLibpcapAndTheOwnReader() {
        let files = Repo.corpusFiles.filter { URL(fileURLWithPath: $0).lastPathComponent.contains(".pcapng") }
        #expect(files.count == 49, "expected the 49 pcapng files of Tests/Corpus/pcap")
        var disagreements: [String] = []
        var own = 0
        for path in files {
            let name = Repo.corpusName(path)
            if Self.knownDifferences[name] != nil { continue }
            if let d = Readers.replayDisagreement(path, name: name) { disagreements.append(d) }
            let (reference, _) = Readers.read(path, .libpcap)
            if (try? OfflineCapture(path: path))?.usesPcapngReader == true { own += 1 }
            // The default buffer, and one so small that every block crosses its end and large ones grow it.
            for capacity in [BufferedPcapReader.defaultCapacity, 64, 200] {
                let (outcome, _) = Readers.read(path, .automatic, capacity: capacity)
                if outcome != reference {
                    disagreements.append("\(name) (\(capacity)): \(String(describing: outcome)) ≠ libpcap \(String(describing: reference))")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        // Three are refused by libpcap's open (versions, an over-long option): the rest go through the own reader.
        #expect(own >= 45, "only \(own) corpus files went through the pcapng reader")
    }

    /// One link type, every block kind and timestamp option, both byte orders.
    static func singleLinkType(bigEndian: Bool, tsresol: UInt8?, tsoffset: Int64?) -> CraftedPcapng {
        var c = CraftedPcapng()
        c.section(bigEndian: bigEndian, comment: true)
        c.block(4, [0, 0, 0, 0])  // an empty name resolution block: skipped
        c.interface(1, tsresol: tsresol, tsoffset: tsoffset, name: "eth0")
        c.interface(1, tsresol: tsresol, tsoffset: tsoffset)
        for i in 0..<6 {
            let t = UInt64(1_700_000_000) &* 1_000_000 &+ UInt64(i) &* 123_457 &+ (UInt64(i) << 40)
            c.enhanced(interface: UInt32(i % 2), timestamp: t, frame: CraftedPcapng.ethernet(i, size: 60 + 37 * i),
                       wire: UInt32(60 + 37 * i + 4 * (i % 2)), comment: i == 3)
        }
        c.simple(frame: CraftedPcapng.ethernet(7, size: 90))
        c.packet(interface: 1, timestamp: 0xFFFF_FFFF_FFFF, frame: CraftedPcapng.ethernet(8))
        c.block(5, [UInt8](repeating: 0, count: 20))  // interface statistics: skipped
        c.section(bigEndian: bigEndian)  // a second section in the same order: interfaces again
        c.interface(1, tsresol: tsresol, tsoffset: tsoffset)
        c.enhanced(interface: 0, timestamp: 42, frame: CraftedPcapng.ethernet(9))
        c.block(0x4000_0BAD, [1, 2, 3, 4, 5, 6, 7, 8])  // a custom block: skipped
        return c
    }

    @Test func aFileOfOneLinkTypeReadsIdenticallyWhateverItsTimestampOptionsAndByteOrder() throws {
        // µs (default), 10^0, ms, ns, 10^-12, 10^-19, 2^0, 2^-10, 2^-30, 2^-63; offsets positive and negative.
        let resolutions: [UInt8?] = [nil, 0, 3, 9, 12, 19, 0x80, 0x8A, 0x9E, 0xBF]
        for bigEndian in [false, true] {
            for (n, tsresol) in resolutions.enumerated() {
                for tsoffset: Int64? in [nil, 1_000_000, -86_400] {
                    let c = Self.singleLinkType(bigEndian: bigEndian, tsresol: tsresol, tsoffset: tsoffset)
                    let path = c.write("single-\(bigEndian)-\(n)-\(tsoffset ?? 0).pcapng")
                    let (reference, _) = Readers.read(path, .libpcap)
                    #expect(reference?.totals.packets == UInt64(c.records), "\(String(describing: reference))")
                    for capacity in [BufferedPcapReader.defaultCapacity, 64, 100] {
                        let (outcome, _) = Readers.read(path, .automatic, capacity: capacity)
                        #expect(outcome == reference, "\(path) capacity \(capacity)")
                    }
                    #expect(try OfflineCapture(path: path).usesPcapngReader)
                }
            }
        }
    }

    @Test func aFileCutAtAnyByteIsCountedUpToTheCutExactlyAsLibpcapCountsIt() throws {
        let whole = Self.singleLinkType(bigEndian: true, tsresol: 0x8A, tsoffset: 5)
        var disagreements: [String] = []
        for cut in 1..<whole.bytes.count {
            var c = CraftedPcapng()
            c.append(raw: Array(whole.bytes.prefix(cut)))
            let path = c.write("cut-\(cut).pcapng")
            let (reference, _) = Readers.read(path, .libpcap)
            let (outcome, _) = Readers.read(path, .automatic, capacity: 64)
            if outcome != reference { disagreements.append("cut \(cut): \(String(describing: outcome)) ≠ \(String(describing: reference))") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }

    @Test func aFileWithAByteChangedAnywhereIsReadAsLibpcapReadsItOrFurtherWhereOnlyLibpcapRefusesASecondLinkType() throws {
        let whole = Self.singleLinkType(bigEndian: false, tsresol: 6, tsoffset: nil)
        var disagreements: [String] = []
        for at in 0..<whole.bytes.count {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var bytes = whole.bytes
                bytes[at] ^= flip
                var c = CraftedPcapng()
                c.append(raw: bytes)
                let path = c.write("flip.pcapng")
                let (reference, _) = Readers.read(path, .libpcap)
                let (outcome, _) = Readers.read(path, .automatic, capacity: 64)
                guard let reference, let outcome else {
                    if (reference == nil) != (outcome == nil) { disagreements.append("byte \(at)^\(flip): opened by one reader only") }
                    continue
                }
                if case .cutShort(_, let reason, _)? = reference.error,
                   reason.hasPrefix("a second interface has link type") || reason.hasPrefix("an interface has a snapshot length") {
                    // libpcap stops at an interface unlike the first; the own reader reads on.
                    if outcome.totals.packets < reference.totals.packets { disagreements.append("byte \(at)^\(flip): fewer packets") }
                    continue
                }
                if outcome != reference { disagreements.append("byte \(at)^\(flip): \(outcome) ≠ \(reference)") }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }

    @Test func aSectionHeaderBeforeTheFirstInterfaceIsSkippedAsLibpcapSkipsIt() throws {
        // Found by the pcapng fuzz target: libpcap's open skips every block but an interface's description,
        // section headers (and their version) included.
        var c = CraftedPcapng()
        c.section(bigEndian: false)
        var odd = CraftedPcapng()
        odd.block(0x0A0D_0D0A, [0x4D, 0x3C, 0x2B, 0x1A, 0x81, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8))
        c.append(raw: odd.bytes)
        c.interface(1)
        c.enhanced(interface: 0, timestamp: 1, frame: CraftedPcapng.ethernet(1))
        let path = c.write("shb-before-idb.pcapng")
        let (reference, _) = Readers.read(path, .libpcap)
        #expect(reference?.totals.packets == 1)
        #expect(reference?.error == nil)
        for capacity in [64, BufferedPcapReader.defaultCapacity] {
            #expect(Readers.read(path, .automatic, capacity: capacity).0 == reference)
        }
    }

    @Test func aSnapshotAboveTheLinkTypesMaximumStandsAsInLibpcap() throws {
        // Found by the pcapng fuzz target: libpcap 1.10 replaces only 0 and values above 2^31-1 by the maximum.
        var c = CraftedPcapng()
        c.section(bigEndian: false)
        c.interface(1, snaplen: 524_288)
        c.enhanced(interface: 0, timestamp: 1, frame: CraftedPcapng.ethernet(1))
        c.interface(1, snaplen: 524_288)
        c.enhanced(interface: 1, timestamp: 2, frame: CraftedPcapng.ethernet(2) + [UInt8](repeating: 0, count: 300_000 - 60))
        let path = c.write("big-snapshot.pcapng")
        let (reference, _) = Readers.read(path, .libpcap)
        #expect(reference?.totals.packets == 2)
        #expect(reference?.error == nil)
        #expect(try OfflineCapture(path: path).usesPcapngReader)
        #expect(Readers.read(path, .automatic, capacity: 64).0 == reference)
        // A second section whose interface has another snapshot: libpcap stops there, the own reader reads on.
        c.section(bigEndian: false)
        c.interface(1, snaplen: 0)
        c.enhanced(interface: 0, timestamp: 3, frame: CraftedPcapng.ethernet(3))
        let other = c.write("other-snapshot.pcapng")
        #expect(Readers.read(other, .libpcap).0?.totals.packets == 2)
        let (own, _) = Readers.read(other, .automatic)
        #expect(own?.totals.packets == 3)
        #expect(own?.error == nil)
    }

    /// Ethernet and raw IP interfaces with records interleaved (the second
    /// described after the first's records), then a big-endian section of
    /// Linux SLL and 802.11 radiotap (not decoded) interfaces.
    static func twoLinkTypes() -> (file: CraftedPcapng, parts: [CraftedPcapng]) {
        var c = CraftedPcapng()
        // The same records, one file per interface, for libpcap to read.
        var eth = CraftedPcapng(), raw = CraftedPcapng(), sll = CraftedPcapng(), radio = CraftedPcapng()
        eth.section(bigEndian: false); eth.interface(1)
        raw.section(bigEndian: false); raw.interface(101, tsresol: 9)
        sll.section(bigEndian: true); sll.interface(113, snaplen: 128)
        radio.section(bigEndian: true); radio.interface(127, tsresol: 0x94)

        c.section(bigEndian: false, comment: true)
        c.interface(1)
        for i in 0..<3 { c.enhanced(interface: 0, timestamp: 1_700_000_000_000_000 + UInt64(i), frame: CraftedPcapng.ethernet(i)) }
        c.interface(101, tsresol: 9)
        for i in 3..<9 {
            if i % 2 == 0 {
                c.enhanced(interface: 0, timestamp: 1_700_000_000_000_000 + UInt64(i), frame: CraftedPcapng.ethernet(i))
                eth.enhanced(interface: 0, timestamp: 1_700_000_000_000_000 + UInt64(i), frame: CraftedPcapng.ethernet(i))
            } else {
                c.enhanced(interface: 1, timestamp: 1_700_000_000_000_000_000 + UInt64(i), frame: CraftedPcapng.raw(i))
                raw.enhanced(interface: 0, timestamp: 1_700_000_000_000_000_000 + UInt64(i), frame: CraftedPcapng.raw(i))
            }
        }
        for i in 0..<3 { eth.enhanced(interface: 0, timestamp: 1_700_000_000_000_000 + UInt64(i), frame: CraftedPcapng.ethernet(i)) }
        c.block(5, [UInt8](repeating: 0, count: 20))
        c.section(bigEndian: true)
        c.interface(113, snaplen: 128)
        c.interface(127, tsresol: 0x94)
        for i in 9..<15 {
            if i % 3 == 0 {
                c.enhanced(interface: 1, timestamp: UInt64(i) << 20, frame: CraftedPcapng.radiotap(i))
                radio.enhanced(interface: 0, timestamp: UInt64(i) << 20, frame: CraftedPcapng.radiotap(i))
            } else {
                c.enhanced(interface: 0, timestamp: 1_700_000_000_000_000 + UInt64(i), frame: CraftedPcapng.sll(i))
                sll.enhanced(interface: 0, timestamp: 1_700_000_000_000_000 + UInt64(i), frame: CraftedPcapng.sll(i))
            }
        }
        c.simple(frame: CraftedPcapng.sll(15))
        sll.simple(frame: CraftedPcapng.sll(15))
        c.packet(interface: 0, timestamp: 1_700_000_000_000_000, frame: CraftedPcapng.sll(16))
        sll.packet(interface: 0, timestamp: 1_700_000_000_000_000, frame: CraftedPcapng.sll(16))
        return (c, [eth, raw, sll, radio])
    }

    @Test func aFileWithTwoLinkTypesAndTwoByteOrdersIsCountedWholeEachRecordUnderItsInterfacesLinkType() throws {
        let (file, parts) = Self.twoLinkTypes()
        let path = file.write("two-link-types.pcapng")
        let result = replayOnce(files: [path], model: HostModel())
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.totals.packets == UInt64(file.records))
        #expect(result.invariantHolds)
        // Every record lands where it lands when its interface's records are replayed alone through libpcap.
        let partPaths = parts.enumerated().map { $1.write("part-\($0).pcapng") }
        let reference = replayOnce(files: partPaths, model: HostModel(), reader: .libpcap)
        #expect(reference.errors.isEmpty, "\(reference.errors)")
        #expect(reference.totals.packets == UInt64(file.records))
        #expect(result.counters == reference.counters)
        #expect(result.totals.bytes == reference.totals.bytes)
        #expect(result.totals.capturedBytes == reference.totals.capturedBytes)
        #expect(result.counters.reasonPackets(.linkTypeUnsupported) == 2)
        #expect(result.unsupportedLinkTypes == reference.unsupportedLinkTypes)
        #expect(result.unsupportedLinkTypes.map(\.linkType) == [127])
        #expect(result.counters.protocolPackets(.ipv4) == UInt64(file.records) - 2, "every record but the two radiotap ones is IPv4")
        // The multi-worker engine counts the same.
        let engine = ReplayEngine.replay(files: [path], model: HostModel(), workers: 2, flowTableCapacity: 4096)
        #expect(engine.counters == result.counters)
        #expect(engine.totals == result.totals)
    }

    @Test func readingStopsAtTheLimitAndCarriesOnAcrossSectionsAndByteOrders() throws {
        let (file, _) = Self.twoLinkTypes()
        let path = file.write("two-limit.pcapng")
        let (whole, _) = Readers.read(path, .automatic)
        for capacity in [64, BufferedPcapReader.defaultCapacity] {
            for limit: UInt64 in [1, 5, 9, 14] {
                let capture = try OfflineCapture(path: path, reader: .automatic, bufferCapacity: capacity)
                var decoder = PacketDecoder(linkType: capture.linkType)
                var sink = DigestSink()
                var totals = try capture.read(into: &sink, decoder: &decoder, limit: limit)
                #expect(totals.packets == limit)
                totals += try capture.read(into: &sink, decoder: &decoder)
                #expect(totals.packets == UInt64(file.records))
                #expect(sink.hasher.finalize() == whole?.digest)
                #expect(capture.bytesConsumed == capture.fileSize)
            }
        }
    }

    @Test func aDamagedBlockAfterTheSecondLinkTypeEndsReadingCutShortWithTheRecordsBeforeItCounted() throws {
        let (file, _) = Self.twoLinkTypes()
        var bytes = file.bytes
        // The last block's trailer no longer matches its header.
        bytes[bytes.count - 1] ^= 0x10
        var c = CraftedPcapng()
        c.append(raw: bytes)
        let path = c.write("two-damaged.pcapng")
        let result = replayOnce(files: [path], model: HostModel())
        guard case .cutShort(_, let reason, let counted)? = result.errors.first else {
            Issue.record("expected cutShort, got \(result.errors)")
            return
        }
        #expect(reason == "block total length in header and trailer don't match")
        #expect(counted == UInt64(file.records - 1))
        #expect(result.totals.packets == counted)
        #expect(result.invariantHolds)
    }

    @Test func theCommandLineReplaysAFileWithTwoLinkTypesToJSONAndExitsZero() throws {
        let (file, _) = Self.twoLinkTypes()
        let path = file.write("two-cli.pcapng")
        let r = try runProcess(Repo.flowmeterBinary, ["replay", "--json", path])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let totals = try #require(doc["totals"] as? [String: Any])
        #expect((totals["packets"] as? NSNumber)?.intValue == file.records)
        let files = try #require(doc["files"] as? [[String: Any]])
        #expect(files.first?["error"] == nil, "\(files)")
        let undecoded = try #require(doc["undecoded"] as? [[String: Any]])
        let unsupported = try #require(undecoded.first { $0["reason"] as? String == "link_type_unsupported" })
        let linkTypes = try #require(unsupported["link_types"] as? [[String: Any]])
        #expect(linkTypes.map { $0["name"] as? String } == ["IEEE802_11_RADIO"])
    }
}

