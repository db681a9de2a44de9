import FlowMeterCore
import FlowMeterAccounting
import Foundation
import GRDB

extension AccountingStore {
    /// Stores `seed`, replacing an earlier import for the same relay and
    /// period start (a later import has the newer counts).
    public func storeImported(_ seed: ImportedUsage) throws {
        guard let queue else { throw StoreError.writeFailed(path: path, reason: "the store is closed") }
        func utc(_ d: Date) -> Int64 { Int64(d.timeIntervalSince1970.rounded(.down)) }
        do {
            try queue.write { db in
                try db.execute(sql: """
                    INSERT OR REPLACE INTO imported_usage(relay, start_utc, end_utc, read_bytes, written_bytes, source, imported_utc)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [seed.relay, utc(seed.start), utc(seed.end), Int64(clamping: seed.read),
                                     Int64(clamping: seed.written), seed.source.rawValue, utc(seed.imported)])
            }
        } catch {
            throw StoreError.writeFailed(path: path, reason: StoreError.reason(error))
        }
    }
}

extension AccountingReader: ImportedUsageSource {
    public func importedUsage(overlapping interval: DateInterval) throws -> [ImportedUsage] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM imported_usage WHERE end_utc > ? AND start_utc < ? ORDER BY start_utc, relay
                """, arguments: [Int64(interval.start.timeIntervalSince1970.rounded(.down)),
                                 Int64(interval.end.timeIntervalSince1970.rounded(.up))]).compactMap { row in
                guard let source = ImportedUsage.Source(rawValue: row["source"]) else { return nil }
                func date(_ c: String) -> Date { Date(timeIntervalSince1970: Double(row[c] as Int64)) }
                return ImportedUsage(relay: row["relay"], start: date("start_utc"), end: date("end_utc"),
                                     read: UInt64(clamping: row["read_bytes"] as Int64),
                                     written: UInt64(clamping: row["written_bytes"] as Int64),
                                     source: source, imported: date("imported_utc"))
            }
        }
    }
}

/// Why a tor state file or a vnstat database could not be imported.
public struct ImportError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads a period's counts from tor's state file or vnstat 2.x.
public enum UsageImporter {
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
        return ImportedUsage(relay: relay, start: start, end: writtenAt, read: state.bytesRead,
                             written: state.bytesWritten, source: .torState, imported: now)
    }

    /// The current month of one interface from `vnstat --json` (jsonversion 2):
    /// the newest `traffic.month` entry, counted to the interface's `updated`.
    public static func vnstatJSON(_ data: Data, interface: String?, relay: String, now: Date = Date()) throws -> ImportedUsage {
        struct Doc: Decodable {
            var jsonversion: String?
            var interfaces: [Interface]
        }
        struct Stamp: Decodable { var timestamp: Int64 }
        struct Month: Decodable { var timestamp: Int64; var rx: UInt64; var tx: UInt64 }
        struct Traffic: Decodable { var month: [Month]? }
        struct Interface: Decodable { var name: String; var updated: Stamp; var traffic: Traffic }
        let doc: Doc
        do { doc = try JSONDecoder().decode(Doc.self, from: data) } catch {
            throw ImportError("not vnstat 2.x `vnstat --json` output (\(error))")
        }
        guard doc.jsonversion == "2" else {
            throw ImportError("vnstat JSON version \(doc.jsonversion ?? "?") is not supported: use vnstat 2.x (jsonversion 2)")
        }
        let chosen = try pick(doc.interfaces.map(\.name), interface)
        let iface = doc.interfaces.first { $0.name == chosen }!
        guard let month = iface.traffic.month?.max(by: { $0.timestamp < $1.timestamp }) else {
            throw ImportError("vnstat has no month data for \(chosen): run `vnstat --json` without a mode, or with `m`")
        }
        return ImportedUsage(relay: relay, start: Date(timeIntervalSince1970: Double(month.timestamp)),
                             end: Date(timeIntervalSince1970: Double(iface.updated.timestamp)),
                             read: month.rx, written: month.tx, source: .vnstatJSON, imported: now)
    }

    /// The same from vnstat's own SQLite database (opened read-only). Its
    /// dates are the vnstat host's local time; SQLite converts them.
    public static func vnstatDatabase(path: String, interface: String, relay: String, now: Date = Date()) throws -> ImportedUsage {
        guard FileManager.default.fileExists(atPath: path) else { throw ImportError("\(path): no such file") }
        var config = Configuration()
        config.readonly = true
        do {
            let q = try DatabaseQueue(path: path, configuration: config)
            defer { try? q.close() }
            return try q.read { db in
                guard try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('interface', 'month')") == 2 else {
                    throw ImportError("\(path): not a vnstat 2.x database (no interface and month tables)")
                }
                let names = try String.fetchAll(db, sql: "SELECT name FROM interface ORDER BY name")
                let chosen = try pick(names, interface)
                guard let row = try Row.fetchOne(db, sql: """
                    SELECT CAST(strftime('%s', m.date, 'utc') AS INTEGER) AS start, m.rx, m.tx,
                           CAST(strftime('%s', i.updated, 'utc') AS INTEGER) AS updated
                    FROM month m JOIN interface i ON m.interface = i.id
                    WHERE i.name = ? ORDER BY m.date DESC LIMIT 1
                    """, arguments: [chosen]) else {
                    throw ImportError("\(path): vnstat has no month data for \(chosen) yet")
                }
                return ImportedUsage(relay: relay, start: Date(timeIntervalSince1970: Double(row["start"] as Int64)),
                                     end: Date(timeIntervalSince1970: Double(row["updated"] as Int64)),
                                     read: UInt64(clamping: row["rx"] as Int64), written: UInt64(clamping: row["tx"] as Int64),
                                     source: .vnstatDB, imported: now)
            }
        } catch let e as ImportError {
            throw e
        } catch {
            throw ImportError("\(path): cannot read the vnstat database: \(StoreError.reason(error))")
        }
    }

    private static func pick(_ names: [String], _ wanted: String?) throws -> String {
        if let wanted {
            guard names.contains(wanted) else {
                throw ImportError("vnstat has no interface '\(wanted)'; it has: \(names.isEmpty ? "none" : names.joined(separator: ", "))")
            }
            return wanted
        }
        guard names.count == 1 else {
            throw ImportError("vnstat has \(names.isEmpty ? "no interfaces" : "several interfaces (\(names.joined(separator: ", ")))"); name one with --interface")
        }
        return names[0]
    }
}
