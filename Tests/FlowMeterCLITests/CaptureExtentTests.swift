import Foundation
import Testing
@testable import FlowMeterTestSupport

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
