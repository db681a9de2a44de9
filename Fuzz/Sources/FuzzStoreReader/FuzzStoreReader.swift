import FlowMeterAccounting
import FlowMeterCore
import FlowMeterFormat
import FlowMeterStore
import Foundation
import FuzzSupport
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// A FlowMeter store damaged by arbitrary input, handed to every reader the
/// commands use (report's buckets and gaps, a quota's period walk, imports,
/// surges, state, `db check`): each ends with a value or a StoreError, never
/// a trap, and never runs past its time limit.
///
/// An input that starts with SQLite's header is the database file itself.
/// Any other input is a list of edits to a sound store, three bytes a head:
/// a table, a column, a value kind; values take the bytes after the head up
/// to the next 0xFF. Bytes at the end flip bits of the file at offsets the
/// input names, as damage on disk would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStoreReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Data(bytes: data, count: size)
    let path = "/tmp/flowmeter-fuzz-\(getpid())-store.db"
    for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
    if input.starts(with: Array("SQLite format 3\0".utf8)) {
        guard FuzzInput.file(data, size, name: "store.db") == path else { return 0 }
    } else {
        guard (try? StoreEdits.apply(input, to: path)) != nil else { return 0 }
    }
    StoreEdits.readEverything(path)
    return 0
}

enum StoreEdits {
    /// A sound store made once per process (kept as a file: a global holding
    /// its bytes reads as a leak to LeakSanitizer): hours and days for two
    /// relays, a gap, a surge, an import, a state value.
    static func template() throws -> String {
        let path = "/tmp/flowmeter-fuzz-\(getpid())-template.db"
        if access(path, F_OK) == 0 { return path }
        let building = path + ".new"
        for suffix in ["", "-wal", "-shm"] { unlink(building + suffix) }
        let store = try AccountingStore(path: building)
        var batch = FlushBatch(clockUTC: 1_772_330_400)
        for (resolution, start) in [(BucketResolution.hour, Int64(1_772_326_800)), (.day, 1_772_323_200)] {
            for relay in ["host", "relay1"] {
                batch.deltas.append(BucketDelta(resolution: resolution, startUTC: start,
                                                cell: Cell(relay: relay, category: .orInbound, direction: .inbound,
                                                           CellCounts(packets: 10, bytes: 15_000, payloadBytes: 14_000))))
            }
        }
        batch.gaps = [GapRecord(startUTC: 1_772_326_800, endUTC: 1_772_327_000, reason: .agentCrashed)]
        batch.state = [AccountingStore.lastObservationKey: "1772330400000000000"]
        batch.surges = [SurgeSpan(relay: "relay1", category: .exit, direction: .outbound, kind: .rate,
                                  start: Date(timeIntervalSince1970: 1_772_327_000), end: nil, bytes: 99)]
        try store.write(batch)
        try store.storeImported(ImportedUsage(relay: "host", start: Date(timeIntervalSince1970: 1_772_323_200),
                                              end: Date(timeIntervalSince1970: 1_772_330_000), read: 5, written: 6,
                                              source: .vnstatDB, imported: Date(timeIntervalSince1970: 1_772_330_400)))
        try store.close()
        guard rename(building, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        return path
    }

    static var tables: [(String, [String])] { [
        ("bucket", ["resolution_seconds", "start_utc", "relay", "category", "direction", "packets", "bytes", "payload_bytes", "tor_payload_bytes"]),
        ("gap", ["start_utc", "end_utc", "reason"]),
        ("state", ["name", "value", "updated_utc"]),
        ("surge", ["start_utc", "end_utc", "open", "relay", "category", "direction", "kind", "bytes"]),
        ("imported_usage", ["relay", "start_utc", "end_utc", "read_bytes", "written_bytes", "source", "imported_utc"]),
        ("info", ["name", "value"]),
    ] }

    static func value(_ kind: UInt8, _ bytes: Data) -> DatabaseValue {
        let number = bytes.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        switch kind % 8 {
        case 0: return number.databaseValue
        case 1: return (-number).databaseValue
        case 2: return [Int64.max, Int64.min, 0, -1, 253_402_300_800, 3600, 86_400][Int(number.magnitude % 7)].databaseValue
        case 3: return Double(bitPattern: UInt64(bitPattern: number)).databaseValue
        case 4: return String(decoding: bytes, as: UTF8.self).databaseValue
        case 5: return Data(bytes).databaseValue
        case 6: return .null
        default: return ["or_inbound", "exit", "undecoded", "in", "out", "none", "rate", "tor-state", "2026-03-01"][Int(number.magnitude % 9)].databaseValue
        }
    }

    /// The template with the input's edits (each may break a constraint:
    /// SQLite's checks are lifted the way a hand edit lifts them).
    static func apply(_ input: Data, to path: String) throws {
        try Data(contentsOf: URL(fileURLWithPath: try template())).write(to: URL(fileURLWithPath: path))
        var rest = input[...]
        let q = try DatabaseQueue(path: path)
        try q.writeWithoutTransaction { db in
            // A throwaway copy: no fsync per edit.
            try db.execute(sql: "PRAGMA synchronous = OFF; PRAGMA ignore_check_constraints = ON")
            var edits = 0
            while rest.count >= 3, edits < 16, rest.first != 0xFE {
                let head = Array(rest.prefix(3)); rest = rest.dropFirst(3)
                let body = rest.prefix { $0 != 0xFF }; rest = rest.dropFirst(body.count + 1)
                let (table, columns) = tables[Int(head[0]) % tables.count]
                let column = columns[Int(head[1]) % columns.count]
                let v = value(head[2], Data(body))
                if head[2] & 0x80 == 0 {
                    try? db.execute(sql: "UPDATE \(table) SET \(column) = ? WHERE rowid IN (SELECT rowid FROM \(table) LIMIT 1 OFFSET ?)",
                                    arguments: [v, Int(head[1] >> 4) % 3])
                } else {
                    try? db.execute(sql: "INSERT OR REPLACE INTO \(table)(\(column)) VALUES (?)", arguments: [v])
                }
                edits += 1
            }
        }
        try q.close()
        // After 0xFE: (offset, xor) pairs flip bytes of the file.
        guard rest.first == 0xFE else { return }
        var file = try Data(contentsOf: URL(fileURLWithPath: path))
        var flips = rest.dropFirst()
        while flips.count >= 3, !file.isEmpty {
            let offset = (Int(flips[flips.startIndex]) << 8 | Int(flips[flips.startIndex + 1])) % file.count
            file[offset] ^= flips[flips.startIndex + 2]
            flips = flips.dropFirst(3)
        }
        try file.write(to: URL(fileURLWithPath: path))
    }

    /// Every read a command makes of a store, each ending in a value or an error.
    static func readEverything(_ path: String) {
        guard let reader = try? AccountingReader(path: path, busyTimeoutSeconds: 0.1, timeLimit: QueryTimeLimit(seconds: 2)) else { return }
        let from = Date(timeIntervalSince1970: 1_772_236_800), to = Date(timeIntervalSince1970: 1_772_496_000)
        _ = try? reader.resolutions()
        // Every text a reader hands on is printable: reports write it to a terminal.
        var texts: [String] = []
        texts += (try? reader.buckets(from: from, to: to))?.map(\.cell.labels.relay) ?? []
        texts += (try? reader.buckets(from: Date.distantPast, to: Date.distantFuture))?.map(\.cell.labels.relay) ?? []
        texts += (try? reader.gapRecords(from: from, to: to))?.map(\.reason.rawValue) ?? []
        if let value = try? reader.state(named: AccountingStore.lastObservationKey) { texts.append(value) }
        _ = try? reader.info()
        texts += (try? reader.importedUsage(overlapping: DateInterval(start: from, end: to)))?.map(\.relay) ?? []
        texts += (try? reader.surgeSpans(from: from, to: to))?.map(\.relay) ?? []
        for t in texts { precondition(Format.isPrintable(t), "a reader handed on \(t.debugDescription)") }
        _ = try? reader.surgeBytes(from: from, to: to)
        _ = try? reader.audit()
        _ = try? reader.liveColumns()
        if let quota = try? Quota(spec: "provider 1TiB month 1 00:00 sum provider tz=UTC", defaultZone: TimeZone(identifier: "UTC")!) {
            _ = try? QuotaUsage.measure(quota, source: reader, now: to)
        }
    }
}
