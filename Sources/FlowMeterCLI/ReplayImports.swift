import FlowMeterCore
import FlowMeterStore
import Foundation

/// `replay --db` counts each record of a capture once (docs/storage.md,
/// "Imports"): a capture whose fingerprint the store already holds is
/// skipped with a message; a copy taken while it was still being written (a
/// prefix) and the finished file (its extension) share an identity, and the
/// store keeps how many of its records were counted, so a later, longer copy
/// counts only the records after them. Everything is written in one
/// transaction with the fingerprints and extents, so a kill -9 or a full
/// disk mid-import leaves nothing of it behind and the re-run counts it
/// whole, once.
enum ReplayImports {
    /// What to replay: the files, and per file the records an earlier import counted.
    struct Plan {
        var files: [String] = []
        var skipping: [UInt64] = []
    }

    /// How much of one capture (by `CaptureFingerprint.identity`) is counted.
    struct Extent: Equatable {
        var records: UInt64
        var recordsHash: UInt64

        /// The `state` table's name for a capture's extent.
        static func key(_ identity: UInt64) -> String { "capture/" + hex(identity) }
        var text: String { "\(records) \(ReplayImports.hex(recordsHash))" }

        init(records: UInt64, recordsHash: UInt64) { self.records = records; self.recordsHash = recordsHash }
        init?(_ text: String) {
            let parts = text.split(separator: " ")
            guard parts.count == 2, let n = UInt64(parts[0]), let h = UInt64(parts[1], radix: 16) else { return nil }
            records = n; recordsHash = h
        }
    }

    static func hex(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The files to replay and what to skip of each: those not imported
    /// before (nor twice on this command line), less what an earlier import
    /// of the same capture counted. Each one's fingerprint and extent are
    /// handed to `accumulator`. A file that cannot be opened is kept: the
    /// replay reports it.
    static func select(_ files: [String], accumulator: BucketAccumulator, db: String) throws -> Plan {
        accumulator.writesOnlyAtShutdown = true
        var seen = Set<CaptureFingerprint>()
        var extents: [UInt64: Extent] = [:]  // counted on this command line, by identity
        var plan = Plan()
        // A store that cannot be opened yet (full disk) cannot be asked; the final write then fails and says so.
        let canAsk = accumulator.openError == nil
        for file in files {
            guard let probe = try? OfflineCapture(path: file, reader: .libpcap),
                  let capture = try? OfflineCapture(path: file, reader: .libpcap) else {
                plan.files.append(file); plan.skipping.append(0); continue
            }
            let identity = probe.fingerprint(records: 1).identity
            let stored = canAsk ? try accumulator.storedState(named: Extent.key(identity)).flatMap(Extent.init) : nil
            let earlier = extents[identity] ?? stored
            let f = capture.fingerprint(checkpoints: Set([stored, extents[identity]].compactMap { $0?.records }))
            if canAsk, try accumulator.importedUTC(f) != nil {
                Diagnostics.error("\(file): this capture (\(f.packets) packets, \(iso(f.firstTimestampNanos / 1_000_000_000)) to \(iso(f.lastTimestampNanos / 1_000_000_000))) was already imported into \(db); skipped, not counted again")
                continue
            }
            guard seen.insert(f).inserted else {
                Diagnostics.error("\(file): the same capture appears twice on the command line; counted once")
                continue
            }
            guard let skip = recordsToSkip(f, after: earlier, file: file, db: db) else { continue }
            if f.packets > 0 && (skip > 0 || earlier == nil) {
                let extent = Extent(records: f.packets, recordsHash: f.recordsHash)
                extents[identity] = extent
                accumulator.setState(extent.text, for: Extent.key(identity))
            }
            accumulator.recordImport(f)
            plan.files.append(file)
            plan.skipping.append(skip)
        }
        return plan
    }

    /// How many of `f`'s first records an earlier import counted (0: none),
    /// or nil when nothing of the file is new; says so on stderr.
    static func recordsToSkip(_ f: CaptureFingerprint, after earlier: Extent?, file: String, db: String) -> UInt64? {
        guard let earlier else { return 0 }
        if f.packets < earlier.records {
            Diagnostics.error("\(file): its \(f.packets) records are the start of a capture already imported into \(db) (\(earlier.records) records); skipped, not counted again")
            return nil
        }
        guard f.recordsHash(at: earlier.records) == earlier.recordsHash else {
            Diagnostics.error("\(file): starts like a capture imported before but differs after its first record; counted whole")
            return 0
        }
        if f.packets == earlier.records {
            Diagnostics.error("\(file): all \(f.packets) records of this capture were already imported into \(db); skipped, not counted again")
            return nil
        }
        Diagnostics.error("\(file): its first \(earlier.records) records were imported into \(db) before (from a shorter copy of this capture); counting the \(f.packets - earlier.records) after them")
        return earlier.records
    }

    /// Which UTC days an import that could not be written leaves out.
    static func missingDays(_ totals: ReadTotals) -> String {
        guard let first = totals.firstTimestampNanos, let last = totals.lastTimestampNanos else { return "no days" }
        let day = { (ns: Int64) in String(iso(ns / 1_000_000_000).prefix(10)) }
        return day(first) == day(last) ? day(first) : "\(day(first)) to \(day(last))"
    }

    static func iso(_ seconds: Int64) -> String {
        Date(timeIntervalSince1970: Double(seconds)).formatted(.iso8601)
    }
}
