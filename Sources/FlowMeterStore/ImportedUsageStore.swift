import FlowMeterCore
import FlowMeterAccounting
import Foundation
import GRDB

extension AccountingStore {
    /// Stores `seed`, replacing an earlier import for the same relay and
    /// period start (a later import has the newer counts). Every value is
    /// stored exactly as given or refused (`UsageImporter.checked`): SQLite's
    /// integers are signed 64-bit, so a count above 2^63 − 1 is an error,
    /// never a different number.
    public func storeImported(_ seed: ImportedUsage) throws {
        guard let queue else { throw StoreError.writeFailed(path: path, reason: "the store is closed") }
        let seed = try UsageImporter.checked(seed)
        func utc(_ d: Date) -> Int64 { Int64(d.timeIntervalSince1970.rounded(.down)) }
        do {
            try queue.write { db in
                try db.execute(sql: """
                    INSERT OR REPLACE INTO imported_usage(relay, start_utc, end_utc, read_bytes, written_bytes, source, imported_utc)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [seed.relay, utc(seed.start), utc(seed.end), Int64(seed.read),
                                     Int64(seed.written), seed.source.rawValue, utc(seed.imported)])
            }
        } catch {
            throw StoreError.writeFailed(path: path, reason: StoreError.reason(error))
        }
    }
}

extension AccountingReader: ImportedUsageSource {
    /// Seeds overlapping `interval`; a row FlowMeter could not have written
    /// is `StoreError.readFailed` naming it, like a damaged bucket.
    public func importedUsage(overlapping interval: DateInterval) throws -> [ImportedUsage] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM imported_usage WHERE end_utc > ? AND start_utc < ? ORDER BY start_utc, relay
                """, arguments: [Self.utc(interval.start, .down), Self.utc(interval.end)]).compactMap { row in
                let stored = StoredRow(path: path, table: "imported_usage", row: row)
                // A source a newer FlowMeter may add is left out, not refused.
                guard let source = ImportedUsage.Source(rawValue: try stored.text("source")) else { return nil }
                func date(_ c: String) throws -> Date { Date(timeIntervalSince1970: Double(try stored.instant(c))) }
                return ImportedUsage(relay: try stored.text("relay"), start: try date("start_utc"), end: try date("end_utc"),
                                     read: try stored.counter("read_bytes"), written: try stored.counter("written_bytes"),
                                     source: source, imported: try date("imported_utc"))
            }
        }
    }
}
