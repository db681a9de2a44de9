import FlowMeterAccounting
import FlowMeterCore
import FlowMeterFormat
import Foundation
import GRDB

/// A stored value FlowMeter could not have written. Readers turn it into
/// `StoreError.readFailed` (its description is the reason).
struct DamagedValue: Error, CustomStringConvertible {
    var path: String
    var table: String
    var column: String
    var what: String
    var summary: String { "\(table).\(column) holds \(what)" }
    var description: String {
        summary + ": the file was damaged or edited by hand; `flowmeter db check --db \(path)` lists every such row"
    }
}

/// Reads one stored row's values without trusting them. The file is input
/// like any capture: a hand edit, a flipped byte or another tool can leave
/// text, a blob, NULL, a real or an absurd instant where FlowMeter wrote an
/// integer. GRDB's typed subscripts trap on such a value, so every read
/// decodes the `DatabaseValue` itself and throws `DamagedValue` naming the
/// table, the column and what it found.
struct StoredRow {
    /// Bucket and gap instants FlowMeter can have written: from 1970 (pcap
    /// seconds are unsigned) to the end of year 9999. Bounding them keeps
    /// every later step (period walks, `Int64` arithmetic, `Date`) finite.
    static let instantRange: ClosedRange<Int64> = 0...253_402_300_799

    let path: String
    let table: String
    let row: Row

    private func value(_ column: String) throws -> DatabaseValue {
        guard let v = row[column] as DatabaseValue? else {
            throw damaged(column, "no such column")
        }
        return v
    }

    func damaged(_ column: String, _ what: String) -> DamagedValue {
        DamagedValue(path: path, table: table, column: column, what: what)
    }

    static func describe(_ v: DatabaseValue) -> String {
        switch v.storage {
        case .null: return "NULL"
        case .int64(let i): return "the integer \(i)"
        case .double(let d): return "the real number \(d)"
        case .string(let s): return "the text '\(Format.printable(s, limit: 40))'"
        case .blob(let b): return "a \(b.count)-byte blob"
        }
    }

    func int64(_ column: String) throws -> Int64 {
        let v = try value(column)
        guard case .int64(let i) = v.storage else { throw damaged(column, Self.describe(v) + " where an integer belongs") }
        return i
    }

    /// A count: an integer ≥ 0.
    func counter(_ column: String) throws -> UInt64 {
        let i = try int64(column)
        guard i >= 0 else { throw damaged(column, "the negative count \(i)") }
        return UInt64(i)
    }

    /// An instant in UTC seconds inside `instantRange`; `named` is the stored
    /// column an aggregate (`min(start_utc) AS first`) came from.
    func instant(_ column: String, named: String? = nil) throws -> Int64 {
        let v = try value(column)
        guard case .int64(let i) = v.storage else {
            throw damaged(named ?? column, Self.describe(v) + " where an integer belongs")
        }
        guard Self.instantRange.contains(i) else { throw damaged(named ?? column, "the instant \(i), outside 1970–9999") }
        return i
    }

    func resolution(_ column: String) throws -> BucketResolution {
        let i = try int64(column)
        guard i > 0, i <= 86_400, 86_400 % i == 0 else { throw damaged(column, "the bucket length \(i) s, which does not divide a day") }
        return BucketResolution(rawValue: Int(i))
    }

    func text(_ column: String) throws -> String {
        let v = try value(column)
        guard case .string(let s) = v.storage else { throw damaged(column, Self.describe(v) + " where text belongs") }
        // FlowMeter writes printable text only (a relay's name is checked
        // where it is configured): text with escapes is not its row, and a
        // report must not hand it to a terminal.
        guard Format.isPrintable(s) else {
            throw damaged(column, "text with control or format characters (\(Format.printable(s, limit: 40).debugDescription))")
        }
        return s
    }

    /// A bucket row, every value checked (its start a multiple of its length).
    func bucket() throws -> UsageBucket {
        let resolution = try resolution("resolution_seconds")
        let start = try instant("start_utc")
        guard start % Int64(resolution.rawValue) == 0 else {
            throw damaged("start_utc", "\(start), not a multiple of its bucket length \(resolution.rawValue) s")
        }
        let categoryLabel = try text("category"), directionLabel = try text("direction")
        guard let category = Category(label: categoryLabel) else { throw damaged("category", "'\(categoryLabel)', not a category") }
        guard let direction = Direction(label: directionLabel) else { throw damaged("direction", "'\(directionLabel)', not a direction") }
        var counts = CellCounts.zero
        for field in CellField.all { counts[field] = try counter(field.name) }
        return UsageBucket(start: Date(timeIntervalSince1970: Double(start)), durationSeconds: resolution.rawValue,
                           cell: Cell(relay: try text("relay"), category: category, direction: direction, counts))
    }

    func gap() throws -> GapRecord {
        let start = try instant("start_utc"), end = try instant("end_utc")
        guard end >= start else { throw damaged("end_utc", "\(end), before its start \(start)") }
        return GapRecord(startUTC: start, endUTC: end, reason: GapReason(rawValue: try text("reason")))
    }
}

extension FlushBatch {
    /// The first text of the batch that `StoredRow.text` would refuse to read
    /// back (control or format characters), described; nil when all of it
    /// is printable. Configured names are checked where they are written;
    /// this keeps a spill or an import from storing what no report may show.
    func unprintableText() -> String? {
        func quoted(_ s: String) -> String { Format.printable(s, limit: 40).debugDescription }
        for d in deltas where !Format.isPrintable(d.cell.labels.relay) { return "the relay label \(quoted(d.cell.labels.relay))" }
        for s in surges where !Format.isPrintable(s.relay) { return "the relay label \(quoted(s.relay))" }
        for g in gaps where !Format.isPrintable(g.reason.rawValue) { return "the gap reason \(quoted(g.reason.rawValue))" }
        for (k, v) in state.merging(stateIfAbsent, uniquingKeysWith: { a, _ in a })
        where !Format.isPrintable(k) || !Format.isPrintable(v) {
            return "the state row \(quoted(k))"
        }
        return nil
    }

    /// The first instant of the batch that `StoredRow` would refuse to read
    /// back, described; nil when every one is sound.
    func invalidInstant() -> String? {
        let range = StoredRow.instantRange
        if !range.contains(clockUTC) { return "the flush clock \(clockUTC)" }
        for d in deltas where !range.contains(d.startUTC) || d.startUTC % Int64(d.resolution.rawValue) != 0 {
            return "a bucket start \(d.startUTC)"
        }
        for g in gaps where !range.contains(g.startUTC) || !range.contains(g.endUTC) {
            return "a gap \(g.startUTC)…\(g.endUTC)"
        }
        for s in surges {
            let start = s.start.timeIntervalSince1970, end = s.end?.timeIntervalSince1970 ?? start
            guard start.isFinite, end.isFinite, Double(range.lowerBound) <= start, end <= Double(range.upperBound) else {
                return "a surge \(start)…\(end)"
            }
        }
        return nil
    }
}

/// What `flowmeter db check` finds beyond SQLite's own checks.
public struct StoreAudit: Sendable, Equatable {
    /// Schema objects whose stored SQL differs from what FlowMeter's migrations
    /// write (a flipped byte in a CHECK that still parses), or that are missing.
    public var schemaProblems: [String] = []
    /// Rows whose values FlowMeter could not have written, up to a few per table.
    public var rowProblems: [String] = []
    public var isClean: Bool { schemaProblems.isEmpty && rowProblems.isEmpty }
}

extension StoreSchema {
    /// `sqlite_master` as this build's migrations write it (name → SQL), made
    /// in memory so it cannot drift from the migrations. GRDB's own
    /// bookkeeping table is left out: its text is GRDB's, not ours.
    static func expectedSchema() throws -> [String: String] {
        let q = try DatabaseQueue()
        try migrator.migrate(q)
        return try q.read { try liveSchema($0) }
    }

    static func liveSchema(_ db: Database) throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'grdb_%'") {
            let name = (row["name"] as DatabaseValue?).flatMap { String.fromDatabaseValue($0) } ?? "?"
            let type = (row["type"] as DatabaseValue?).flatMap { String.fromDatabaseValue($0) } ?? "?"
            let sql = (row["sql"] as DatabaseValue?).flatMap { String.fromDatabaseValue($0) } ?? ""
            out["\(type) \(name)"] = sql
        }
        return out
    }

    /// Compares the file's schema text with the migrations' and scans every
    /// bucket and gap row for values FlowMeter could not have written.
    static func audit(_ db: Database, path: String, examplesPerTable: Int = 5) throws -> StoreAudit {
        var audit = StoreAudit()
        let expected = try expectedSchema(), live = try liveSchema(db)
        for (name, sql) in expected.sorted(by: { $0.key < $1.key }) {
            guard let found = live[name] else { audit.schemaProblems.append("malformed database schema: \(name) is missing"); continue }
            if found != sql { audit.schemaProblems.append("malformed database schema: the SQL of \(name) differs from what FlowMeter writes") }
        }
        for name in live.keys.sorted() where expected[name] == nil {
            audit.schemaProblems.append("unexpected schema object \(name)")
        }
        guard audit.schemaProblems.isEmpty else { return audit }
        for (table, decode) in [("bucket", { (r: StoredRow) in _ = try r.bucket() }), ("gap", { (r: StoredRow) in _ = try r.gap() })] {
            var found = 0, total = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM \(table)")
            while let row = try rows.next() {
                do { try decode(StoredRow(path: path, table: table, row: row)) } catch let e as DamagedValue {
                    total += 1
                    if found < examplesPerTable { audit.rowProblems.append(e.summary); found += 1 }
                }
            }
            if total > found { audit.rowProblems.append("\(table): \(total - found) more damaged rows") }
        }
        return audit
    }
}
