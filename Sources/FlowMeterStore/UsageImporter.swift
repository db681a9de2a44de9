import FlowMeterCore
import FlowMeterFormat
import FlowMeterAccounting
import Foundation
import GRDB

/// Why a tor state file or a vnstat database could not be imported.
public struct ImportError: Error, CustomStringConvertible, Equatable {
    public var description: String
    /// Made printable and at most 600 characters: the text can quote the
    /// file (an interface's name, the JSON decoder's words about a key).
    public init(_ description: String) { self.description = Format.printable(description, limit: 600) }
}

/// Reads a period's counts from tor's state file or vnstat 2.x. Each is
/// input from outside: every number is parsed without a trap, every instant
/// and count is checked against what the store can hold, and what cannot be
/// stored exactly is refused with the value named (never clamped).
public enum UsageImporter {
    /// The largest count the store holds: SQLite's integers are signed 64-bit.
    public static let largestCount = UInt64(Int64.max)

    /// `seed` if the store can hold it exactly, else an `ImportError` naming
    /// the value: instants from 1970 to 9999 (`StoredRow.instantRange`),
    /// counts up to 2^63 − 1, an end not before the start.
    public static func checked(_ seed: ImportedUsage) throws -> ImportedUsage {
        let range = StoredRow.instantRange
        for (what, date) in [("start", seed.start), ("end", seed.end), ("import time", seed.imported)] {
            let s = date.timeIntervalSince1970
            guard s.isFinite, Double(range.lowerBound) <= s, s <= Double(range.upperBound) else {
                throw ImportError("\(seed.source.rawValue): the period's \(what) (\(s) s since 1970) lies outside 1970–9999")
            }
        }
        guard seed.end >= seed.start else {
            throw ImportError("\(seed.source.rawValue): the counts run to \(Int64(seed.end.timeIntervalSince1970)), before their period starts (\(Int64(seed.start.timeIntervalSince1970)))")
        }
        for (what, count) in [("read", seed.read), ("written", seed.written)] where count > largestCount {
            throw ImportError("\(seed.source.rawValue): \(count) bytes \(what) is more than the store holds (at most \(largestCount), 2^63 − 1)")
        }
        // Readers refuse such a label (StoredRow.text): one row would cost every report.
        guard Format.isPrintable(seed.relay) else {
            throw ImportError("\(seed.source.rawValue): the relay label \(Format.printable(seed.relay, limit: 40).debugDescription) has control or format characters")
        }
        return seed
    }

    /// An instant in UTC seconds from another tool, checked before it becomes a `Date`.
    static func instant(_ seconds: Int64, _ what: String) throws -> Date {
        guard StoredRow.instantRange.contains(seconds) else {
            throw ImportError("\(what) \(seconds) is not an instant between 1970 and 9999")
        }
        return Date(timeIntervalSince1970: Double(seconds))
    }

    /// Tor's AccountingBytesReadInInterval / AccountingBytesWrittenInInterval
    /// since AccountingIntervalStart (docs/tor-facts.md §2.8). Tor records the
    /// counts at most ~11 minutes before it writes the file, so they run to
    /// the file's modification time, `writtenAt`.
    public static func torState(_ text: String, relay: String, writtenAt: Date, now: Date = Date()) throws -> ImportedUsage {
        let state: TorAccountingState
        do { state = try TorAccountingState(stateFile: text) } catch { throw ImportError("tor state file: \(error)") }
        guard let start = state.intervalStart else {
            throw ImportError("tor state file has no AccountingIntervalStart: is AccountingMax set in the torrc?")
        }
        guard writtenAt > start else {
            throw ImportError("tor state file was written before its AccountingIntervalStart \(TorTime.format(start))")
        }
        return try checked(ImportedUsage(relay: relay, start: start, end: writtenAt, read: state.bytesRead,
                                         written: state.bytesWritten, source: .torState, imported: now))
    }

    /// The current month of one interface from `vnstat --json` (jsonversion 2):
    /// the newest `traffic.month` entry, counted to the interface's `updated`.
    public static func vnstatJSON(_ data: Data, interface: String?, relay: String, now: Date = Date()) throws -> ImportedUsage {
        let doc: VnstatJSON.Document
        do { doc = try JSONDecoder().decode(VnstatJSON.Document.self, from: data) } catch let e as ImportError {
            throw e
        } catch {
            throw ImportError("not vnstat 2.x `vnstat --json` output (\(error))")
        }
        guard doc.jsonversion == "2" else {
            throw ImportError("vnstat JSON version \(doc.jsonversion.map { String($0.prefix(20)) } ?? "?") is not supported: use vnstat 2.x (jsonversion 2)")
        }
        let chosen = try pick(doc.interfaces.map(\.name), interface)
        guard let iface = doc.interfaces.first(where: { $0.name == chosen }) else { throw ImportError("vnstat has no interface '\(chosen)'") }
        guard let month = iface.traffic.month?.max(by: { $0.timestamp < $1.timestamp }) else {
            throw ImportError("vnstat has no month data for \(chosen): run `vnstat --json` without a mode, or with `m`")
        }
        return try checked(ImportedUsage(
            relay: relay, start: try instant(month.timestamp, "vnstat JSON: \(chosen)'s month timestamp"),
            end: try instant(iface.updated.timestamp, "vnstat JSON: \(chosen)'s updated timestamp"),
            read: try VnstatJSON.count(month.rx, "rx", chosen), written: try VnstatJSON.count(month.tx, "tx", chosen),
            source: .vnstatJSON, imported: now))
    }

    /// The same from vnstat's own SQLite database, opened read-only after the
    /// same checks as FlowMeter's own (a regular file, every query bounded in
    /// time). Its dates are the vnstat host's local time; SQLite converts
    /// them, and a date it cannot convert is an error naming it.
    public static func vnstatDatabase(path: String, interface: String, relay: String, now: Date = Date(),
                                      timeLimit: QueryTimeLimit = .command) throws -> ImportedUsage {
        do {
            try DatabaseFile.requireRegular(path, mayBeMissing: false)
        } catch {
            throw ImportError(error.description)
        }
        var config = Configuration()
        config.readonly = true
        do {
            let q = try DatabaseQueue(path: path, configuration: config)
            defer { try? q.close() }
            return try timeLimit.run(q) { try q.read { try vnstatMonth($0, path: path, interface: interface) } }
                .seed(relay: relay, now: now)
        } catch let e as ImportError {
            throw e
        } catch {
            throw ImportError("\(path): cannot read the vnstat database: \(StoreError.reason(error))")
        }
    }

    /// The newest month row of `interface`, its values checked as read.
    private static func vnstatMonth(_ db: Database, path: String, interface: String) throws -> VnstatRow {
        guard try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('interface', 'month')") == 2 else {
            throw ImportError("\(path): not a vnstat 2.x database (no interface and month tables)")
        }
        let names = try Row.fetchAll(db, sql: "SELECT name FROM interface ORDER BY name").compactMap {
            ($0["name"] as DatabaseValue?).flatMap { String.fromDatabaseValue($0) }
        }
        let chosen = try pick(names, interface)
        guard let row = try Row.fetchOne(db, sql: """
            SELECT m.date, CAST(strftime('%s', m.date, 'utc') AS INTEGER) AS start, m.rx, m.tx,
                   i.updated, CAST(strftime('%s', i.updated, 'utc') AS INTEGER) AS updated_utc
            FROM month m JOIN interface i ON m.interface = i.id
            WHERE i.name = ? ORDER BY m.date DESC LIMIT 1
            """, arguments: [chosen]) else {
            throw ImportError("\(path): vnstat has no month data for \(chosen) yet")
        }
        return try VnstatRow(row, path: path, interface: chosen)
    }

    private static func pick(_ names: [String], _ wanted: String?) throws -> String {
        let shown = names.prefix(20).map { String($0.prefix(40)) }.joined(separator: ", ") + (names.count > 20 ? ", …" : "")
        if let wanted {
            guard names.contains(wanted) else {
                throw ImportError("vnstat has no interface '\(wanted.prefix(40))'; it has: \(names.isEmpty ? "none" : shown)")
            }
            return wanted
        }
        guard names.count == 1 else {
            throw ImportError("vnstat has \(names.isEmpty ? "no interfaces" : "several interfaces (\(shown))"); name one with --interface")
        }
        return names[0]
    }
}

/// `vnstat --json` (jsonversion 2), as much of it as the import reads. Numbers
/// are decoded as `Int64` only: a fraction, an exponent, a negative count or
/// one past 2^63 − 1 is an error naming the field, never a trap or a clamp.
enum VnstatJSON {
    struct Document: Decodable {
        var jsonversion: String?
        var interfaces: [Interface]
    }
    struct Stamp: Decodable { var timestamp: Int64 }
    struct Month: Decodable { var timestamp: Int64; var rx: Int64; var tx: Int64 }
    struct Traffic: Decodable { var month: [Month]? }
    struct Interface: Decodable { var name: String; var updated: Stamp; var traffic: Traffic }

    static func count(_ v: Int64, _ field: String, _ interface: String) throws -> UInt64 {
        guard v >= 0 else { throw ImportError("vnstat JSON: \(interface)'s month \(field) is \(v), not a byte count") }
        return UInt64(v)
    }
}

/// One `month` row of vnstat's database joined with its interface, every
/// value decoded without trusting it (vnstat's file is another program's).
struct VnstatRow {
    var start: Date
    var end: Date
    var rx: UInt64
    var tx: UInt64

    init(_ row: Row, path: String, interface: String) throws {
        func text(_ c: String) -> String {
            (row[c] as DatabaseValue?).map { StoredRow.describe($0) } ?? "nothing"
        }
        func count(_ c: String) throws -> UInt64 {
            guard let v = row[c] as DatabaseValue?, case .int64(let i) = v.storage, i >= 0 else {
                throw ImportError("\(path): vnstat's month.\(c) for \(interface) holds \(text(c)), not a byte count")
            }
            return UInt64(i)
        }
        func instant(_ c: String, from source: String) throws -> Date {
            guard let v = row[c] as DatabaseValue?, case .int64(let i) = v.storage else {
                throw ImportError("\(path): vnstat's \(source) for \(interface) holds \(text(source == "month.date" ? "date" : "updated")), not a date")
            }
            return try UsageImporter.instant(i, "\(path): vnstat's \(source) for \(interface)")
        }
        start = try instant("start", from: "month.date")
        end = try instant("updated_utc", from: "interface.updated")
        rx = try count("rx")
        tx = try count("tx")
    }

    func seed(relay: String, now: Date) throws -> ImportedUsage {
        try UsageImporter.checked(ImportedUsage(relay: relay, start: start, end: end, read: rx, written: tx,
                                                source: .vnstatDB, imported: now))
    }
}
