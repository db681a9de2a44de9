import Foundation
import Testing
import FlowMeterCoreTestSupport
@testable import FlowMeterCore

/// A pcapng file with interfaces of two link types read through libpcap
/// (`--reader libpcap`; the automatic reader counts both, PcapngReaderTests).
/// libpcap 1.10 reads one link type per file and stops at the description of
/// an interface of another (see PcapngLinkTypes.swift): what came before is
/// counted, and the error names both link types and what to do.
@Suite struct PcapngTwoLinkTypesTests {
    /// SHB, IDB(first), EPB on interface 0, IDB(second), EPB on interface 1.
    static func twoInterfaces(first: UInt16, second: UInt16, frame0: [UInt8], frame1: [UInt8]) -> Data {
        var out = Data()
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        // Section Header Block.
        le32(0x0A0D_0D0A); le32(28); le32(0x1A2B_3C4D); le16(1); le16(0); le32(0xFFFF_FFFF); le32(0xFFFF_FFFF); le32(28)
        func idb(_ linkType: UInt16) { le32(1); le32(20); le16(linkType); le16(0); le32(65535); le32(20) }
        func epb(_ interface: UInt32, _ frame: [UInt8]) {
            let padded = (frame.count + 3) & ~3
            let length = UInt32(32 + padded)
            le32(6); le32(length); le32(interface); le32(0x0006_0000); le32(0)
            le32(UInt32(frame.count)); le32(UInt32(frame.count))
            out.append(contentsOf: frame + [UInt8](repeating: 0, count: padded - frame.count))
            le32(length)
        }
        idb(first); epb(0, frame0); idb(second); epb(1, frame1)
        return out
    }

    static let ipv4UDP: [UInt8] = [0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
                                   0x30, 0x39, 0, 53, 0, 8, 0, 0]
    static let ethernet: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00] + ipv4UDP

    @Test func recordsBeforeTheSecondInterfaceAreCountedAndTheErrorNamesBothLinkTypes() throws {
        let path = makeTemporaryDirectory("pcapng-two-idb") + "/two.pcapng"
        try Self.twoInterfaces(first: 1, second: 101, frame0: Self.ethernet, frame1: Self.ipv4UDP)
            .write(to: URL(fileURLWithPath: path))
        let result = replayOnce(files: [path], model: HostModel(), reader: .libpcap)
        #expect(result.totals.packets == 1)
        #expect(result.totals.bytes == UInt64(Self.ethernet.count))
        #expect(result.invariantHolds)
        let error = try #require(result.errors.first)
        guard case .cutShort(_, let reason, let counted) = error else {
            Issue.record("expected cutShort, got \(error)")
            return
        }
        #expect(counted == 1)
        #expect(reason.hasPrefix("a second interface has link type RAW (LINKTYPE 101), the first EN10MB (DLT 1); "), "\(reason)")
        #expect(reason.contains("split the file per interface"))
    }

    @Test func anotherLibpcapMessagePassesUnchanged() {
        #expect(OfflineCapture.explainDamage("truncated dump file", firstLinkType: LinkType(rawValue: 1)) == "truncated dump file")
    }
}
