import FlowMeterCore
import FlowMeterStore
import Foundation

/// `replay --db` counts each capture once (docs/storage.md, "Imports"): a
/// capture whose fingerprint the store already holds is skipped with a
/// message, and the rest are written in one transaction together with their
/// fingerprints, so a kill -9 or a full disk mid-import leaves nothing of it
/// behind and the re-run counts it whole, once.
enum ReplayImports {
    /// The files to replay: those not imported before (nor twice on this
    /// command line). Each one's fingerprint is handed to `accumulator`.
    /// A file that cannot be opened is kept: the replay reports it.
    static func select(_ files: [String], accumulator: BucketAccumulator, db: String) throws -> [String] {
        accumulator.writesOnlyAtShutdown = true
        var seen = Set<CaptureFingerprint>()
        var keep: [String] = []
        for file in files {
            guard let capture = try? OfflineCapture(path: file, reader: .libpcap) else { keep.append(file); continue }
            let f = capture.fingerprint()
            // A store that cannot be opened yet (full disk) cannot be asked; the final write then fails and says so.
            if accumulator.openError == nil, try accumulator.importedUTC(f) != nil {
                Diagnostics.error("\(file): this capture (\(f.packets) packets, \(iso(f.firstTimestampNanos / 1_000_000_000)) to \(iso(f.lastTimestampNanos / 1_000_000_000))) was already imported into \(db); skipped, not counted again")
                continue
            }
            guard seen.insert(f).inserted else {
                Diagnostics.error("\(file): the same capture appears twice on the command line; counted once")
                continue
            }
            accumulator.recordImport(f)
            keep.append(file)
        }
        return keep
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
