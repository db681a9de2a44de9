import Foundation
import Testing
import FlowMeterCoreTestSupport
@testable import FlowMeterCore

/// The `link_types` list of `link_type_unsupported` holds only records the
/// decoder refused for their link type: an empty record of that link type is
/// an `empty_record`, not a packet of the link type.
@Suite struct UnsupportedLinkTypeListTests {
    /// A classic pcap (little-endian, microseconds) of `linkType` with the
    /// records given as (captured bytes, wire length).
    static func pcap(linkType: UInt32, records: [(captured: Int, wire: UInt32)]) -> Data {
        var out = Data()
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le32(0xa1b2_c3d4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(linkType)
        for (i, r) in records.enumerated() {
            le32(1_700_000_000 + UInt32(i)); le32(0); le32(UInt32(r.captured)); le32(r.wire)
            out.append(contentsOf: [UInt8](repeating: 0x42, count: r.captured))
        }
        return out
    }

    @Test(arguments: OfflineReader.allCases)
    func theLinkTypesListCountsOnlyRecordsOfThatLinkTypeThatWereRead(reader: OfflineReader) throws {
        let path = makeTemporaryDirectory("unsupported-empty") + "/radiotap.pcap"
        // IEEE 802.11 radiotap (127): one empty record, two with bytes.
        try Self.pcap(linkType: 127, records: [(0, 60), (20, 100), (0, 70), (8, 40)]).write(to: URL(fileURLWithPath: path))
        let result = replayOnce(files: [path], model: HostModel(), reader: reader)
        #expect(result.errors.isEmpty)
        #expect(result.totals.packets == 4)
        #expect(result.counters.reasonPackets(.emptyRecord) == 2)
        #expect(result.counters.reasonPackets(.linkTypeUnsupported) == 2)
        #expect(result.unsupportedLinkTypes == [UnsupportedLinkType(linkType: 127, name: "IEEE802_11_RADIO", packets: 2, bytes: 140)])
        #expect(result.invariantHolds)
    }

    @Test func aFileOfOnlyEmptyRecordsListsNoLinkType() throws {
        let path = makeTemporaryDirectory("unsupported-only-empty") + "/radiotap.pcap"
        try Self.pcap(linkType: 127, records: [(0, 60), (0, 70)]).write(to: URL(fileURLWithPath: path))
        let result = replayOnce(files: [path], model: HostModel())
        #expect(result.counters.reasonPackets(.emptyRecord) == 2)
        #expect(result.unsupportedLinkTypes.isEmpty)
    }
}
