import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport

/// What `replay --db` writes can always be read back: records with impossible
/// times are counted under their reason and stored at no invalid instant.
@Suite struct ImpossibleTimeImportTests {
    /// A classic microsecond pcap of UDP frames with the given (seconds, µs) stamps.
    static func capture(_ path: String, stamps: [(UInt32, UInt32)], payload: Int = 20) throws {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u32(0xA1B2_C3D4); u16(2); u16(4); u32(0); u32(0); u32(65535); u32(1)
        let frame = TestTraffic.udp(TestTraffic.ip(10, 0, 0, 1), 40000, TestTraffic.ip(10, 0, 0, 2), 53, payload: payload)
        for (seconds, fraction) in stamps {
            u32(seconds); u32(fraction); u32(UInt32(frame.count)); u32(UInt32(frame.count))
            out.append(contentsOf: frame)
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    static func scalar(_ db: String, _ sql: String) throws -> Int64? {
        let q = try DatabaseQueue(path: db)
        defer { try? q.close() }
        return try q.read { try Int64.fetchOne($0, sql: sql) }
    }

    @Test func recordsWithImpossibleTimesAreCountedByReasonAndNothingIsStoredBefore1970() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let pcap = dir.path("times.pcap"), db = dir.path("acct.db")
        // 0 s and −1 µs (a sign-extended fraction) decoded to an instant before
        // 1970; 1.5 s of microseconds is no time at all.
        try Self.capture(pcap, stamps: [(0, 0xFFFF_FFFF), (1_772_323_200, 0), (1_772_323_200, 1_500_000),
                                        (5, 0xFFFF_FF00), (1_772_326_800, 999_999)])
        let r = try runProcess(Repo.flowmeterBinary, ["replay", "--json", "--db", db, pcap], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let undecoded = try #require(doc["undecoded"] as? [[String: Any]])
        let reason = undecoded.first { $0["reason"] as? String == "timestamp_invalid" }
        #expect((reason?["packets"] as? NSNumber)?.intValue == 3, "\(undecoded)")

        #expect(try Self.scalar(db, "SELECT min(start_utc) FROM bucket") ?? -1 >= 1_772_323_200 - 86_400)
        #expect(try Self.scalar(db, "SELECT count(*) FROM gap WHERE start_utc < 0 OR end_utc < 0") == 0)
        #expect(try Self.scalar(db, "SELECT sum(packets) FROM bucket WHERE resolution_seconds = 3600") == 5)
        for args in [["report", "--db", db], ["db", "check", "--db", db]] {
            let after = try runProcess(Repo.flowmeterBinary, args, timeout: 60)
            #expect(after.status == 0, "`\(args.prefix(2).joined(separator: " "))` refused what replay wrote: \(after.stdout) \(after.stderr)")
        }
    }
}
