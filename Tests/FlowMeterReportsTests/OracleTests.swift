import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterCore

/// The ground truth: replaying generated captures must reproduce, exactly,
/// the counters the generator assigned to each packet when it built it.
@Suite struct OracleTests {
    static let fileNames: [String] = GeneratedRelayHost.shared.files.keys.sorted()

    @Test(arguments: fileNames)
    func replayMatchesTheOracleExactlyForEveryRelayCategoryAndDirection(_ name: String) throws {
        let oracle = GeneratedRelayHost.shared
        let expected = oracle.files[name]!
        let result = replayOnce(files: [oracle.path(name)], model: try oracle.load().model)
        let report = ReplayReport(result)
        #expect(result.errors.isEmpty)
        #expect(result.invariantHolds)

        let totals = expected["totals"] as! [String: UInt64]
        #expect(report.totals.packets == totals["packets"])
        #expect(report.totals.bytes == totals["bytes"])

        var want: [String: [UInt64]] = [:]
        for row in expected["categories"] as! [[String: Any]] {
            let key = "\(row["relay"]!)/\(row["category"]!)/\(row["direction"]!)"
            want[key] = ["packets", "bytes", "payload_bytes", "tor_payload_bytes"].map { (row[$0] as! NSNumber).uint64Value }
        }
        var got: [String: [UInt64]] = [:]
        for row in report.categories.map(\.cell) where row.packets > 0 {
            got["\(row.relay)/\(row.category.label)/\(row.direction.label)"] = [row.packets, row.bytes, row.payloadBytes, row.torPayloadBytes]
        }
        #expect(got == want)

        var wantReasons: [String: [UInt64]] = [:]
        for row in expected["undecoded"] as! [[String: Any]] {
            wantReasons[row["reason"] as! String] = [(row["packets"] as! NSNumber).uint64Value, (row["bytes"] as! NSNumber).uint64Value]
        }
        var gotReasons: [String: [UInt64]] = [:]
        for row in report.undecoded where row.packets > 0 { gotReasons[row.reason] = [row.packets, row.bytes] }
        #expect(gotReasons == wantReasons)

        let protocols = (expected["protocols"] as! [String: NSNumber]).mapValues(\.uint64Value)
        #expect(report.protocols == protocols)
    }

    @Test func theSameTrafficInPcapNanosecondBigEndianAndPcapngCountsIdentically() throws {
        let oracle = GeneratedRelayHost.shared
        let model = try oracle.load().model
        let a = replayOnce(files: [oracle.path("relay-host.pcap")], model: model).counters
        let b = replayOnce(files: [oracle.path("relay-host-ns-be.pcap")], model: model).counters
        let c = replayOnce(files: [oracle.path("relay-host.pcapng")], model: model).counters
        #expect(a == b)
        #expect(a == c)
    }

    @Test func bytesAreWireLengthsEvenWhenTheSnaplenCutThePacket() throws {
        let oracle = GeneratedRelayHost.shared
        let result = replayOnce(files: [oracle.path("relay-host.pcap")], model: try oracle.load().model)
        #expect(result.totals.capturedBytes < result.totals.bytes)
        #expect(result.counters.accountedBytes == result.totals.bytes)
    }
}

@Suite struct OracleConnectionTests {
    /// or_inbound, or_outbound and dir are TCP only (rules 3 and 4), so the
    /// generator's TCP connection ground truth applies to them exactly.
    @Test(arguments: [1, 2, 4])
    func theEngineCountsTheOraclesTCPConnectionsWithAnyWorkerCount(_ workers: Int) throws {
        let oracle = GeneratedRelayHost.shared
        let expected = oracle.files["relay-host.pcap"]!["connections"] as! [[String: Any]]
        let result = ReplayEngine.replay(files: [oracle.path("relay-host.pcap")], model: try oracle.load().model, workers: workers)
        let report = ReplayReport(result)
        #expect(result.replay.invariantHolds)
        for row in expected where ["or_inbound", "or_outbound", "dir"].contains(row["category"] as! String) {
            let mine = try #require(report.connections?.first { $0.relay == row["relay"] as! String && $0.category == row["category"] as! String })
            #expect(mine.opened == (row["opened"] as! NSNumber).uint64Value, "\(row)")
            #expect(mine.unanswered == (row["unanswered"] as! NSNumber).uint64Value, "\(row)")
            #expect(mine.closed == (row["closed"] as! NSNumber).uint64Value, "\(row)")
        }
    }
}
