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

/// A copy of a capture taken while it was still being written, then the
/// finished file (or the other way round): each record is counted once.
@Suite struct CaptureExtentTests {
    static let packets = 6012

    struct Files { var dir: String; var whole: String; var prefix: String; var prefixRecords: Int64 }

    /// The whole capture (one packet every 10 s from 2026-03-01) and its
    /// first 350,000 bytes, cut inside a record.
    static func files() throws -> Files {
        let dir = makeTemporaryDirectory("import-prefix")
        let whole = dir + "/whole.pcap", prefix = dir + "/prefix.pcap"
        let stamps: [(UInt32, UInt32)] = (0..<packets).map { i in
            let seconds: UInt32 = 1_772_323_200 + UInt32(i) * 10
            return (seconds, UInt32(i % 1000))
        }
        try ImpossibleTimeImportTests.capture(whole, stamps: stamps, payload: 60)
        let data = try #require(FileManager.default.contents(atPath: whole))
        try data.prefix(350_000).write(to: URL(fileURLWithPath: prefix))
        // A 24-byte file header, then 16-byte record headers and 102-byte frames.
        let record = 16 + 102
        #expect(data.count == 24 + packets * record && (350_000 - 24) % record != 0)
        return Files(dir: dir, whole: whole, prefix: prefix, prefixRecords: Int64((350_000 - 24) / record))
    }

    static func replay(_ db: String, _ files: [String]) throws -> ProcessResult {
        try runProcess(Repo.flowmeterBinary, ["replay", "--db", db] + files, timeout: 120)
    }

    @Test func aPrefixThenTheWholeCaptureCountsEachRecordOnce() throws {
        let f = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let db = f.dir + "/acct.db"
        let reference = try Self.replay(f.dir + "/ref.db", [f.whole])
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try ReplayImportTests.storedHourTotals(f.dir + "/ref.db")
        #expect(expected.packets == Int64(Self.packets))

        let first = try Self.replay(db, [f.prefix])
        #expect(first.stderr.contains("cut short"), "\(first.stderr)")
        #expect(try ReplayImportTests.storedHourTotals(db).packets == f.prefixRecords)
        let second = try Self.replay(db, [f.whole])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("first \(f.prefixRecords) records were imported"), "\(second.stderr)")
        #expect(try ReplayImportTests.storedHourTotals(db) == expected)
        // Neither copy adds anything again.
        for file in [f.whole, f.prefix] {
            let again = try Self.replay(db, [file])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stderr.contains("already imported"), "\(again.stderr)")
        }
        #expect(try ReplayImportTests.storedHourTotals(db) == expected)
    }

    @Test func theWholeCaptureThenAPrefixOrBothAtOnceCountEachRecordOnce() throws {
        let f = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        _ = try Self.replay(f.dir + "/ref.db", [f.whole])
        let expected = try ReplayImportTests.storedHourTotals(f.dir + "/ref.db")

        let db = f.dir + "/acct.db"
        #expect(try Self.replay(db, [f.whole]).status == 0)
        let prefix = try Self.replay(db, [f.prefix])
        #expect(prefix.stderr.contains("start of a capture already imported"), "\(prefix.stderr)")
        #expect(try ReplayImportTests.storedHourTotals(db) == expected)

        let both = f.dir + "/both.db"
        let r = try Self.replay(both, [f.prefix, f.whole])
        #expect(r.stderr.contains("counting the \(Int64(Self.packets) - f.prefixRecords) after them"), "\(r.stderr)")
        #expect(try ReplayImportTests.storedHourTotals(both) == expected)
    }
}
