import FlowMeterCore
import FlowMeterAccounting
import Foundation
import GRDB

/// What one stored resolution covers.
public struct StoredResolution: Sendable, Equatable {
    public var resolution: BucketResolution
    public var firstStart: Date
    public var lastStart: Date
    public var rows: Int
}

/// A read-only view of an accounting database, for reports, quotas, forecasts
/// and the exporter. It opens the file read-only (it can never write, even by
/// mistake), waits up to a busy timeout for the writer, and never migrates:
/// an older file must be migrated by a writer, a newer one is refused.
public final class AccountingReader: UsageHistorySource {
    public let path: String
    public let schemaVersion: Int
    private let queue: DatabaseQueue

    /// Bounds every query (`read`), so a hostile file ends in an error.
    public let timeLimit: QueryTimeLimit

    /// - Throws: `StoreError.cannotOpen` (no such file, or a FIFO, device or
    ///   directory: refused before SQLite opens it), `.newerSchema`,
    ///   `.olderSchema`, `.notAFlowMeterDatabase`.
    public init(path: String, busyTimeoutSeconds: Double = 5, timeLimit: QueryTimeLimit = .command) throws {
        self.path = path
        self.timeLimit = timeLimit
        try DatabaseFile.requireRegular(path, mayBeMissing: false)
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(busyTimeoutSeconds)
        config.label = "flowmeter-store-reader"
        do {
            func open(_ location: String) throws -> (DatabaseQueue, Int) {
                let q = try DatabaseQueue(path: location, configuration: config)
                return (q, try timeLimit.run(q) { try q.read { try StoreSchema.inspect($0, path: path) } })
            }
            do {
                (queue, schemaVersion) = try open(path)
            } catch let e as DatabaseError where e.resultCode == .SQLITE_CANTOPEN {
                // A WAL file in a read-only directory cannot get its -shm index.
                // If no writer left a -wal behind, the file alone is the whole
                // truth and can be opened immutable; otherwise say what to do.
                guard let uri = Self.immutableURI(path) else {
                    throw StoreError.cannotOpen(path: path, reason: "the directory is read-only and a -wal file holds unmerged writes; copy the database with its -wal file somewhere writable")
                }
                (queue, schemaVersion) = try open(uri)
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError.cannotOpen(path: path, reason: StoreError.reason(error))
        }
        _ = try StoreSchema.validate(schemaVersion, forWriting: false, path: path)
    }

    /// `file:…?immutable=1` for a file in a directory this process cannot
    /// write and with no -wal beside it; nil otherwise. Needs an SQLite built
    /// with URI filenames (Debian's is); elsewhere the open fails as before.
    static func immutableURI(_ path: String) -> String? {
        let dir = (path as NSString).deletingLastPathComponent
        guard access(dir.isEmpty ? "." : dir, W_OK) != 0 else { return nil }
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? nil
        guard (wal ?? 0) == 0 else { return nil }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        guard let encoded = absolute.addingPercentEncoding(withAllowedCharacters: allowed) else { return nil }
        return "file:" + encoded + "?immutable=1"
    }

    /// Every query of the file goes through here: read-only, and bounded by `timeLimit`.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try timeLimit.run(queue) { try queue.read(body) } } catch let e as StoreError { throw e } catch {
            throw StoreError.readFailed(path: path, reason: StoreError.reason(error))
        }
    }

    /// `d` in whole UTC seconds (rounded up unless told), clamped far inside `Int64`.
    static func utc(_ d: Date, _ rule: FloatingPointRoundingRule = .up) -> Int64 {
        let s = d.timeIntervalSince1970
        guard s.isFinite else { return s > 0 ? .max : .min }
        return Int64(max(-9e18, min(9e18, s.rounded(rule))))
    }

    /// Every stored value is checked as it is read (`StoredRow`): a damaged
    /// file gives `StoreError.readFailed` naming the column, never a trap.
    private func bucket(_ row: Row) throws -> UsageBucket {
        try StoredRow(path: path, table: "bucket", row: row).bucket()
    }

    /// Resolutions present in the file, finest first.
    public func resolutions() throws -> [StoredResolution] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT resolution_seconds, min(start_utc) AS first, max(start_utc) AS last, count(*) AS n
                FROM bucket GROUP BY resolution_seconds ORDER BY resolution_seconds
                """).map { row in
                let stored = StoredRow(path: path, table: "bucket", row: row)
                return StoredResolution(resolution: try stored.resolution("resolution_seconds"),
                                        firstStart: Date(timeIntervalSince1970: Double(try stored.instant("first", named: "start_utc"))),
                                        lastStart: Date(timeIntervalSince1970: Double(try stored.instant("last", named: "start_utc"))),
                                        rows: Int(try stored.int64("n")))
            }
        }
    }

    /// Buckets of one resolution whose start lies in [from, to), in start order.
    public func buckets(from: Date, to: Date, resolution: BucketResolution) throws -> [UsageBucket] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM bucket WHERE resolution_seconds = ? AND start_utc >= ? AND start_utc < ?
                ORDER BY start_utc, relay, category, direction
                """, arguments: [resolution.rawValue, Self.utc(from), Self.utc(to)]).map(bucket)
        }
    }

    /// Buckets whose start lies in [from, to), in start order, each span
    /// counted once at the finest resolution still kept for it: where hour
    /// buckets were pruned, day buckets that end before the first kept hour
    /// stand in (their `durationSeconds` says so).
    public func buckets(from: Date, to: Date) throws -> [UsageBucket] {
        var out: [UsageBucket] = []
        var coveredFrom = Int64.max  // everything at or after this is already taken from a finer resolution
        for r in try resolutions() {
            let seconds = Int64(r.resolution.rawValue)
            let upper = coveredFrom == .max ? Self.utc(to) : min(Self.utc(to), coveredFrom - seconds + 1)
            let rows = try read { db in
                try Row.fetchAll(db, sql: """
                    SELECT * FROM bucket WHERE resolution_seconds = ? AND start_utc >= ? AND start_utc < ?
                    ORDER BY start_utc, relay, category, direction
                    """, arguments: [r.resolution.rawValue, Self.utc(from), upper]).map(bucket)
            }
            out += rows
            coveredFrom = min(coveredFrom, Int64(r.firstStart.timeIntervalSince1970))
        }
        // The sort key built once per bucket: labels are computed strings.
        return out.map { b in ((b.start, b.relay, b.category.label, b.direction.label), b) }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// When the store's observing began: the recorded first observation
    /// where it lies inside the earliest bucket (the bucket starts on its
    /// edge, the observing may have started later in it), else the earliest
    /// bucket's start (a store written before the instant was recorded, or
    /// older captures replayed into it later). nil for an empty store.
    public func observationStart() throws -> Date? {
        guard let first = try resolutions().min(by: { $0.firstStart < $1.firstStart }) else { return nil }
        let recorded = try state(named: AccountingStore.firstObservationKey).flatMap { Int64($0) }
            .map { Date(timeIntervalSince1970: Double($0) / 1e9) }
        if let recorded, recorded >= first.firstStart,
           recorded < first.firstStart.addingTimeInterval(Double(first.resolution.rawValue)) {
            return recorded
        }
        return first.firstStart
    }

    /// Spans overlapping [from, to) whose counts are a lower bound.
    public func gapRecords(from: Date, to: Date) throws -> [GapRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM gap WHERE end_utc > ? AND start_utc < ? ORDER BY start_utc",
                             arguments: [Self.utc(from), Self.utc(to)]).map {
                try StoredRow(path: path, table: "gap", row: $0).gap()
            }
        }
    }

    public func gaps(from: Date, to: Date) throws -> [DateInterval] {
        try gapRecords(from: from, to: to).map {
            DateInterval(start: Date(timeIntervalSince1970: Double($0.startUTC)),
                         end: Date(timeIntervalSince1970: Double($0.endUTC)))
        }
    }

    /// A continuity value set through `BucketAccumulator.setState`.
    public func state(named name: String) throws -> String? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT value FROM state WHERE name = ?", arguments: [name]).map {
                try StoredRow(path: path, table: "state", row: $0).text("value")
            }
        }
    }

    /// The `info` table: schema_version, created_utc, last_flush_utc, clean_shutdown.
    public func info() throws -> [String: String] { try read { try AccountingStore.info($0, path: path) } }

    /// `PRAGMA integrity_check`: ["ok"] for a sound file.
    public func integrityCheck() throws -> [String] {
        try read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
    }

    /// `PRAGMA quick_check`: ["ok"] for a sound file.
    public func quickCheck() throws -> [String] {
        try read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
    }

    /// What SQLite's checks cannot see: schema text that differs from the
    /// migrations' (sqlite3 calls it "malformed database schema" when it
    /// resolves the CHECK) and rows holding values FlowMeter never writes.
    public func audit() throws -> StoreAudit {
        try read { try StoreSchema.audit($0, path: path) }
    }

    /// Columns of the live schema as (table, column), for the audit test and `db audit --db`.
    public func liveColumns() throws -> [(table: String, column: String)] {
        try read { db in
            var out: [(String, String)] = []
            let tables = try String.fetchAll(db, sql: """
                SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%' ORDER BY name
                """)
            for t in tables {
                for c in try db.columns(in: t) { out.append((t, c.name)) }
            }
            return out
        }
    }
}
