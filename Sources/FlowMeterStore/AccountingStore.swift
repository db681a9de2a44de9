import FlowMeterCore
import FlowMeterAccounting
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// Why a span of time holds a lower bound rather than the full count. A
/// label, like the other stored values: never an address.
public struct GapReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// Between a clean shutdown and the next start: nothing was captured.
    public static let agentStopped = GapReason(rawValue: "agent_stopped")
    /// After a crash or kill -9: counts since the last flush were lost.
    public static let agentCrashed = GapReason(rawValue: "agent_crashed")
    /// The injected clock stepped forward further than the jump threshold.
    public static let clockJump = GapReason(rawValue: "clock_jump")
    /// The capture reported dropped packets in this span.
    public static let captureDrops = GapReason(rawValue: "capture_drops")
    /// No capture covered this span (e.g. between replayed files).
    public static let captureGap = GapReason(rawValue: "capture_gap")
    public var description: String { rawValue }
}

/// Counts to add to one stored bucket.
public struct BucketDelta: Sendable, Equatable {
    public var resolution: BucketResolution
    /// UTC seconds, a multiple of `resolution`.
    public var startUTC: Int64
    public var cell: Cell

    public init(resolution: BucketResolution, startUTC: Int64, cell: Cell) {
        self.resolution = resolution; self.startUTC = startUTC; self.cell = cell
    }
}

/// A span whose counts are a lower bound, in UTC seconds.
public struct GapRecord: Sendable, Equatable {
    public var startUTC: Int64
    public var endUTC: Int64
    public var reason: GapReason
    public init(startUTC: Int64, endUTC: Int64, reason: GapReason) {
        self.startUTC = startUTC; self.endUTC = max(startUTC, endUTC); self.reason = reason
    }
}

/// Everything one flush writes, applied in a single transaction so a failed
/// flush changes nothing and can be retried whole without double counting.
public struct FlushBatch: Sendable {
    public var deltas: [BucketDelta] = []
    public var gaps: [GapRecord] = []
    public var state: [String: String] = [:]
    /// State written only where the store has none yet (a first, never a latest).
    public var stateIfAbsent: [String: String] = [:]
    /// Surge spans, ended or still open (an open one is rewritten at each flush).
    public var surges: [SurgeSpan] = []
    /// Captures whose counts are in this batch (`replay --db`).
    public var imports: [CaptureFingerprint] = []
    /// The clock instant the batch was taken at (UTC seconds).
    public var clockUTC: Int64
    /// Delete buckets older than each resolution's retention, measured from `clockUTC`.
    public var prune = false
    /// Move the WAL into the database file (period edges, shutdown).
    public var checkpoint = false
    public init(clockUTC: Int64) { self.clockUTC = clockUTC }
    public var isEmpty: Bool {
        deltas.isEmpty && gaps.isEmpty && state.isEmpty && stateIfAbsent.isEmpty && surges.isEmpty && imports.isEmpty && !prune
    }
}

/// What the previous writer left behind, read when the store opens.
public struct PreviousSession: Sendable, Equatable {
    /// Clock instant of the last successful flush (UTC seconds), nil for a new database.
    public var lastFlushUTC: Int64?
    /// Whether that writer closed the store itself (false after kill -9 or a crash).
    public var closedCleanly: Bool
}

/// The one writer of an accounting database (vnstat's `dbsql.c` model): it
/// creates or migrates the file, holds an exclusive lock on it so a second
/// writer is refused, and applies flush batches as single transactions.
///
/// Journal: WAL, so readers (`flowmeter report`, the exporter) never block the
/// writer and a kill -9 mid-transaction leaves the last committed state.
/// `synchronous=NORMAL` by default: in WAL mode that never corrupts, loses
/// nothing committed when the *process* dies, and skips an fsync per flush
/// that flash storage pays for (vnstat#157); a power loss can lose commits
/// since the last checkpoint, and the store checkpoints at period edges and
/// shutdown. `Durability.full` fsyncs every flush for hosts that lose power.
public final class AccountingStore {
    /// State key: the last instant (ns since 1970, UTC) whose traffic is in the
    /// store — "now" for forecasts of a replayed history.
    public static let lastObservationKey = "last_observation_ns"
    /// The instant the store's first counts were observed (nanoseconds since
    /// 1970): the first hour bucket starts on the hour, the observing may
    /// have started later in it, and a forecast must not read the minutes
    /// before as observed silence.
    public static let firstObservationKey = "first_observation_ns"

    public let path: String
    public let configuration: StoreConfiguration
    public private(set) var previousSession: PreviousSession
    var queue: DatabaseQueue?
    private var lockFD: Int32

    /// Opens (creating if needed) and migrates the database at `path`.
    /// - Throws: `StoreError` — `.cannotOpen` (missing or read-only directory),
    ///   `.writerBusy`, `.newerSchema`, `.notAFlowMeterDatabase`.
    public init(path: String, configuration: StoreConfiguration = StoreConfiguration()) throws {
        self.path = path
        self.configuration = configuration
        // The writer lock: flock on the database file itself. SQLite uses
        // fcntl locks, which Linux keeps separate from flock, so the two do
        // not interfere; the kernel drops it when the process dies (kill -9).
        // A FIFO or a device is refused before anything opens it (a FIFO
        // blocks its opener); the descriptor is checked again, in case the
        // name was swapped between the two.
        try DatabaseFile.requireRegular(path, mayBeMissing: true)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o640)
        guard fd >= 0 else { throw StoreError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(fd)
            throw StoreError.notAFile(path: path, what: "not a regular file")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = errno
            Glibc.close(fd)
            if e == EWOULDBLOCK { throw StoreError.writerBusy(path: path) }
            throw StoreError.cannotOpen(path: path, reason: String(cString: strerror(e)))
        }
        lockFD = fd
        do {
            var config = Configuration()
            config.busyMode = .timeout(configuration.busyTimeoutSeconds)
            config.label = "flowmeter-store-writer"
            let q = try DatabaseQueue(path: path, configuration: config)
            queue = q
            // Look before changing anything: a newer or foreign file is left as it was.
            let version = try q.inDatabase { try StoreSchema.inspect($0, path: path) }
            let migrator = StoreSchema.migrator
            let superseded = try q.read { try migrator.hasBeenSuperseded($0) }
            _ = try StoreSchema.validate(version, superseded: superseded, forWriting: true, path: path)
            try q.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = \(configuration.durability == .full ? "FULL" : "NORMAL")")
            }
            try migrator.migrate(q)
            previousSession = try q.write { db in
                let info = try Self.info(db, path: path)
                try db.execute(sql: "INSERT OR REPLACE INTO info(name, value) VALUES ('clean_shutdown', '0')")
                return PreviousSession(lastFlushUTC: info["last_flush_utc"].flatMap { Int64($0) },
                                       closedCleanly: info["clean_shutdown"].map { $0 == "1" } ?? true)
            }
        } catch let e as StoreError {
            try? queue?.close(); flock(fd, LOCK_UN); Glibc.close(fd)
            throw e
        } catch {
            try? queue?.close(); flock(fd, LOCK_UN); Glibc.close(fd)
            throw StoreError.cannotOpen(path: path, reason: StoreError.reason(error))
        }
    }

    deinit {
        try? queue?.close()
        if lockFD >= 0 { flock(lockFD, LOCK_UN); Glibc.close(lockFD) }
    }

    static func info(_ db: Database, path: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, value FROM info") {
            let stored = StoredRow(path: path, table: "info", row: row)
            out[try stored.text("name")] = try stored.text("value")
        }
        return out
    }

    private func clamp(_ v: UInt64) -> Int64 { Int64(clamping: v) }

    /// Applies `batch` in one transaction. On any failure nothing is applied
    /// and `StoreError.writeFailed` is thrown; the caller keeps the batch.
    public func write(_ batch: FlushBatch) throws {
        guard let queue else { throw StoreError.writeFailed(path: path, reason: "the store is closed") }
        // Readers refuse a file holding such an instant, so one bad row would
        // cost every report: nothing of the batch is written (a bug upstream).
        if let bad = batch.invalidInstant() {
            throw StoreError.writeFailed(path: path, reason: "refusing to store \(bad), outside 1970–9999 or off its bucket edge; nothing of this flush was written")
        }
        if let bad = batch.unprintableText() {
            throw StoreError.writeFailed(path: path, reason: "refusing to store \(bad), with control or format characters; nothing of this flush was written")
        }
        do {
            try QueryTimeLimit.write.run(queue) { try apply(batch, queue) }
        } catch {
            throw StoreError.writeFailed(path: path, reason: StoreError.reason(error))
        }
        // The batch is committed: a checkpoint that fails (a full disk cannot
        // grow the file) must not make the caller write it a second time.
        // The WAL keeps it; a later checkpoint moves it.
        if batch.checkpoint {
            _ = try? queue.writeWithoutTransaction { try $0.checkpoint(.passive) }
        }
    }

    /// Adds a cell's counts to its bucket, every count of `CellField.all`.
    static let upsertSQL: String = {
        let names = CellField.all.map(\.name)
        return """
            INSERT INTO bucket(resolution_seconds, start_utc, relay, category, direction, \(names.joined(separator: ", ")))
            VALUES (?, ?, ?, ?, ?, \(names.map { _ in "?" }.joined(separator: ", ")))
            ON CONFLICT(resolution_seconds, start_utc, relay, category, direction) DO UPDATE SET
                \(names.map { "\($0) = \($0) + excluded.\($0)" }.joined(separator: ",\n    "))
            """
    }()

    private func apply(_ batch: FlushBatch, _ queue: DatabaseQueue) throws {
        try queue.write { db in
            let upsert = try db.cachedStatement(sql: Self.upsertSQL)
            for d in batch.deltas {
                let (l, c) = (d.cell.labels, d.cell.counts)
                let counts: [any DatabaseValueConvertible] = CellField.all.map { clamp(c[$0]) }
                try upsert.execute(arguments: StatementArguments([d.resolution.rawValue, d.startUTC, l.relay, l.category.label,
                                                                  l.direction.label] + counts))
            }
            for g in batch.gaps {
                try db.execute(sql: """
                    INSERT INTO gap(start_utc, end_utc, reason) VALUES (?, ?, ?)
                    ON CONFLICT(start_utc, reason) DO UPDATE SET end_utc = max(end_utc, excluded.end_utc)
                    """, arguments: [g.startUTC, g.endUTC, g.reason.rawValue])
            }
            try SurgeRows.write(batch.surges, clockUTC: batch.clockUTC, db)
            for f in batch.imports {
                try db.execute(sql: """
                    INSERT OR IGNORE INTO capture_import(first_ns, last_ns, packets, bytes, records_hash, imported_utc)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: StatementArguments(Self.key(f) + [batch.clockUTC]))
            }
            for (name, value) in batch.state {
                try db.execute(sql: "INSERT OR REPLACE INTO state(name, value, updated_utc) VALUES (?, ?, ?)",
                               arguments: [name, value, batch.clockUTC])
            }
            for (name, value) in batch.stateIfAbsent {
                try db.execute(sql: "INSERT OR IGNORE INTO state(name, value, updated_utc) VALUES (?, ?, ?)",
                               arguments: [name, value, batch.clockUTC])
            }
            if batch.prune {
                for r in configuration.resolutions {
                    guard let keep = r.keepSeconds else { continue }
                    // Cut on a day edge so a coarser resolution always covers what a finer one lost.
                    let cutoff = BucketResolution.day.start(of: batch.clockUTC - keep)
                    try db.execute(sql: "DELETE FROM bucket WHERE resolution_seconds = ? AND start_utc < ?",
                                   arguments: [r.resolution.rawValue, cutoff])
                }
                // Gaps qualify buckets, so they live as long as the longest-kept resolution.
                let keeps = configuration.resolutions.map(\.keepSeconds)
                if !keeps.contains(nil), let longest = keeps.compactMap({ $0 }).max() {
                    try db.execute(sql: "DELETE FROM gap WHERE end_utc < ?", arguments: [batch.clockUTC - longest])
                }
            }
            try db.execute(sql: "INSERT OR REPLACE INTO info(name, value) VALUES ('last_flush_utc', ?)",
                           arguments: [String(batch.clockUTC)])
            // The store has no clock of its own: creation is the first flush's clock.
            try db.execute(sql: "INSERT OR IGNORE INTO info(name, value) VALUES ('created_utc', ?)",
                           arguments: [String(batch.clockUTC)])
        }
    }

    private static func key(_ f: CaptureFingerprint) -> [DatabaseValueConvertible] {
        [f.firstTimestampNanos, f.lastTimestampNanos, Int64(bitPattern: f.packets), Int64(bitPattern: f.bytes),
         Int64(bitPattern: f.firstRecordsHash)]
    }

    /// When a capture with this fingerprint was imported (UTC seconds), or nil.
    public func importedUTC(_ f: CaptureFingerprint) throws -> Int64? {
        guard let queue else { throw StoreError.readFailed(path: path, reason: "the store is closed") }
        do {
            return try queue.read { db in
                try Row.fetchOne(db, sql: """
                    SELECT imported_utc FROM capture_import
                    WHERE first_ns = ? AND last_ns = ? AND packets = ? AND bytes = ? AND records_hash = ?
                    """, arguments: StatementArguments(Self.key(f))).map {
                    try StoredRow(path: path, table: "capture_import", row: $0).int64("imported_utc")
                }
            }
        } catch {
            throw StoreError.readFailed(path: path, reason: StoreError.reason(error))
        }
    }

    /// Writes the counts of a spill the previous agent left (one
    /// transaction, with its `spill/ID` marker), unless that id is already
    /// merged. The previous session then ends at the spill's clock, cleanly:
    /// its counts up to there are in the store, so no gap is recorded for them.
    /// - Returns: false when the spill was merged before (only delete it).
    public func merge(_ spill: SpillFile) throws -> Bool {
        if try state(named: spill.mergedKey) != nil { return false }
        try write(try spill.batch())
        previousSession = PreviousSession(lastFlushUTC: max(previousSession.lastFlushUTC ?? spill.clockUTC, spill.clockUTC),
                                          closedCleanly: true)
        return true
    }

    /// A continuity value in the `state` table, or nil.
    public func state(named name: String) throws -> String? {
        guard let queue else { throw StoreError.readFailed(path: path, reason: "the store is closed") }
        do {
            return try queue.read { db in
                try Row.fetchOne(db, sql: "SELECT value FROM state WHERE name = ?", arguments: [name]).map {
                    try StoredRow(path: path, table: "state", row: $0).text("value")
                }
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError.readFailed(path: path, reason: StoreError.reason(error))
        }
    }

    /// Marks a clean shutdown and releases the writer lock. A store that is
    /// never closed (kill -9) is seen as crashed by the next writer.
    public func close() throws {
        guard let queue else { return }
        defer {
            try? queue.close()
            self.queue = nil
            flock(lockFD, LOCK_UN); Glibc.close(lockFD); lockFD = -1
        }
        do {
            try QueryTimeLimit.write.run(queue) {
                try queue.write { try $0.execute(sql: "INSERT OR REPLACE INTO info(name, value) VALUES ('clean_shutdown', '1')") }
                try queue.writeWithoutTransaction { _ = try $0.checkpoint(.truncate) }
            }
        } catch {
            throw StoreError.writeFailed(path: path, reason: StoreError.reason(error))
        }
    }

    /// `PRAGMA integrity_check`: ["ok"] for a sound file.
    public func integrityCheck() throws -> [String] {
        guard let queue else { return ["closed"] }
        return try queue.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
    }
}
