import FlowMeterFormat
import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

/// What the next start does with spill files it finds in the state
/// directory that FlowMeter did not write as they are: they are read like
/// any input. The log quotes them printable and short, a valid instant far
/// ahead merges without a trap, and nothing is deleted that was not merged.
@Suite struct SpillMergeLogTests {
    /// A spill this accumulator's store would write: 4 packets, its clock at `epoch`.
    private func spillJSON(database: String, in dir: TempDir) throws -> [String: Any] {
        let acc = try BucketAccumulator(path: dir.path("other.db"), configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        acc.observe(c.snapshot, at: epoch)
        c.add(4)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(30))
        let (_, path) = try #require(try acc.spill(into: dir.path("made")))
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        try FileManager.default.removeItem(atPath: path)
        json["database"] = database
        return json
    }

    private func write(_ json: [String: Any], as name: String, in dir: String) throws {
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/" + name))
    }

    @Test func spillFilesWithHostileTextAreLoggedPrintableAndShortAndKept() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("made"), withIntermediateDirectories: true)
        let state = dir.path("state")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let escape = "\u{1B}]52;c;aGk=\u{07}\n2026-12-08T00:00:00Z critical: forged\u{202E}"
        // Another database's spill, its name a screen-clearing escape and a long tail.
        try write(try spillJSON(database: escape + String(repeating: "x", count: 100_000), in: dir),
                  as: SpillFile.prefix + "a.json", in: state)
        // Not JSON FlowMeter writes: a key on the decoder's path carries the escape.
        try Data("{\"state\":{\"\(escape.replacingOccurrences(of: "\n", with: "\\n"))\(String(repeating: "y", count: 100_000))\":1}}".utf8)
            .write(to: URL(fileURLWithPath: state + "/" + SpillFile.prefix + "b.json"))
        // Garbage under a name that is itself an escape.
        try Data([0xFF, 0x00, 0x1B]).write(to: URL(fileURLWithPath: state + "/" + SpillFile.prefix + "\u{1B}[2J.json"))

        let log = CollectedLog()
        let acc = try BucketAccumulator(path: dir.path("a.db"), configuration: hourly(), relayLabels: relayLabels, logger: log.logger)
        acc.mergeSpills(in: state)
        try acc.close()

        let lines = log.messages(atLeast: .warning)
        #expect(lines.count == 3, "\(lines)")
        for line in lines {
            #expect(Format.isPrintable(line), "\(line.debugDescription)")
            #expect(line.count < 1_500, "\(line.count) characters")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: state).count == 3, "a spill not merged is kept")
    }

    /// A spill whose label or state row holds an escape would make the
    /// store unreadable (its readers refuse such text): the store refuses
    /// the whole spill, which stays for a person to look at, and stays readable.
    @Test func aSpillWithAnEscapeInALabelIsRefusedAndTheStoreStaysReadable() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("made"), withIntermediateDirectories: true)
        let db = dir.path("a.db")
        var label = try spillJSON(database: BucketAccumulator.absolute(db), in: dir)
        var buckets = try #require(label["buckets"] as? [[String: Any]])
        buckets[0]["relay"] = "relay1\u{1B}[2J"
        label["buckets"] = buckets
        label["id"] = "label"
        try write(label, as: SpillFile.prefix + "label.json", in: dir.path("made"))
        var state = try spillJSON(database: BucketAccumulator.absolute(db), in: dir)
        state["state"] = ["last_observation_ns": "1\u{202E}2"]
        state["id"] = "state"
        try write(state, as: SpillFile.prefix + "state.json", in: dir.path("made"))

        let log = CollectedLog()
        let acc = try BucketAccumulator(path: db, configuration: hourly(), relayLabels: relayLabels, logger: log.logger)
        acc.mergeSpills(in: dir.path("made"))
        try acc.close()
        let refused = log.messages(atLeast: .error)
        #expect(refused.count == 2 && refused.allSatisfy { $0.contains("with control or format characters") && Format.isPrintable($0) },
                "\(refused)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("made")).count == 2)
        #expect(try storedPackets(db) == 0)
    }

    /// 3000-01-01 is inside the store's range (1970–9999) but past the
    /// nanosecond clock's (2262): the merge line must not multiply it.
    @Test func aSpillWhoseClockIsFarAheadMergesAndIsLoggedWithoutATrap() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("made"), withIntermediateDirectories: true)
        let db = dir.path("a.db")
        var json = try spillJSON(database: BucketAccumulator.absolute(db), in: dir)
        json["clockUTC"] = 32_503_680_000
        try write(json, as: SpillFile.prefix + "far.json", in: dir.path("made"))

        let log = CollectedLog()
        let acc = try BucketAccumulator(path: db, configuration: hourly(), relayLabels: relayLabels, logger: log.logger)
        acc.mergeSpills(in: dir.path("made"))
        try acc.close()
        let merged = log.messages(atLeast: .notice).filter { $0.contains("merged the") }
        #expect(merged.count == 1, "\(log.messages(atLeast: .notice))")
        #expect(merged.contains { $0.hasSuffix("(up to 3000-01-01T00:00:00Z)") }, "\(merged)")
        #expect(try storedPackets(db) == 4)
    }
}
