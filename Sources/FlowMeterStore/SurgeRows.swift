import FlowMeterCore
import FlowMeterAccounting
import Foundation
import GRDB

/// The `surge` table (schema v3): one row per surge of one cell.
enum SurgeRows {
    /// Upserts by (start, cell): an open span is rewritten at every flush
    /// until its final record (open = 0) arrives; meanwhile it ends at the flush's clock.
    static func write(_ spans: [SurgeSpan], clockUTC: Int64, _ db: Database) throws {
        for s in spans {
            let start = Int64(s.start.timeIntervalSince1970.rounded(.down))
            let end = max(start, s.end.map { Int64($0.timeIntervalSince1970.rounded(.up)) } ?? clockUTC)
            try db.execute(sql: """
                INSERT INTO surge(start_utc, end_utc, open, relay, category, direction, kind, bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(start_utc, relay, category, direction) DO UPDATE SET
                    end_utc = excluded.end_utc, open = excluded.open, kind = excluded.kind, bytes = excluded.bytes
                """, arguments: [start, end, s.end == nil ? 1 : 0, s.relay, s.category.label, s.direction.label,
                                 s.kind.rawValue, Int64(clamping: s.bytes)])
        }
    }
}

extension AccountingReader {
    /// Surge spans that overlap [from, to), oldest first. A span still open at
    /// the last flush ends there (`end` is never nil here).
    public func surgeSpans(from: Date, to: Date) throws -> [SurgeSpan] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM surge WHERE start_utc < ? AND end_utc >= ? ORDER BY start_utc, relay, category, direction
                """, arguments: [Self.utc(to), Self.utc(from, .down)])
            .compactMap { row -> SurgeSpan? in
                let stored = StoredRow(path: path, table: "surge", row: row)
                guard let c = Category(label: try stored.text("category")),
                      let kind = SurgeKind(rawValue: try stored.text("kind")) else { return nil }
                let start = try stored.instant("start_utc"), end = try stored.instant("end_utc")
                return SurgeSpan(relay: try stored.text("relay"), category: c,
                                 direction: try stored.text("direction") == "out" ? .outbound : .inbound, kind: kind,
                                 start: Date(timeIntervalSince1970: Double(start)),
                                 end: Date(timeIntervalSince1970: Double(max(start, end))), bytes: try stored.counter("bytes"))
            }
        }
    }

    /// Bytes of [from, to) that came during surges (pro rata for a span
    /// straddling an edge). `include` limits it to some cells (a quota's
    /// scope); nil counts all.
    public func surgeBytes(from: Date, to: Date, include: ((SurgeSpan) -> Bool)? = nil) throws -> UInt64 {
        let total = try surgeSpans(from: from, to: to).filter { include?($0) ?? true }
            .reduce(0.0) { $0 + SurgeExcludedHistory.share(of: $1, from: from, to: to) }
        return UInt64(total.rounded())
    }
}
