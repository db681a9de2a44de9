import FlowMeterCore
import FlowMeterAccounting
import FlowMeterFormat
import Foundation
import GRDB

/// Why the accounting store could not do what was asked. Environmental
/// failures (disk full, read-only directory, a newer database) are thrown as
/// these so every caller can print one clear sentence; bugs trap instead.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    /// The file or its directory could not be opened or created.
    case cannotOpen(path: String, reason: String)
    /// The file is an SQLite database that FlowMeter did not write.
    case notAFlowMeterDatabase(path: String)
    /// Written by a newer FlowMeter: refused rather than misread (vnstat's rule).
    case newerSchema(path: String, found: Int, supported: Int)
    /// Older than this build reads; only a writer may migrate it.
    case olderSchema(path: String, found: Int, supported: Int)
    /// Another process holds the writer lock: one writer per database.
    case writerBusy(path: String)
    /// A write failed; nothing of it was applied (the transaction rolled back).
    case writeFailed(path: String, reason: String)
    case readFailed(path: String, reason: String)
    /// The store configuration cannot be used (see `StoreConfiguration.problem()`).
    case invalidConfiguration(String)
    /// A FIFO, device, directory or socket: refused before anything opens it.
    case notAFile(path: String, what: String)
    /// The file holds schema objects FlowMeter never makes (a view in place
    /// of one of its tables, a trigger) that could make its queries run for ever.
    case unexpectedSchema(path: String, reason: String)

    /// Printable, and at most 1,000 characters: a reason can quote a
    /// damaged file (a value, SQLite's words about its schema), and every
    /// command prints this.
    public var description: String { Format.printable(text, limit: 1_000) }

    private var text: String {
        switch self {
        case .cannotOpen(let p, let r): return "\(p): cannot open the accounting database: \(r)"
        case .notAFlowMeterDatabase(let p): return "\(p): is an SQLite database, but not one FlowMeter wrote; refusing to touch it"
        case .newerSchema(let p, let f, let s):
            return "\(p): database schema version \(f) is newer than this FlowMeter understands (\(s)); upgrade FlowMeter, it will not be changed"
        case .olderSchema(let p, let f, let s):
            return "\(p): database schema version \(f) is older than \(s); run `flowmeter db migrate --db \(p)` (or any writer) first"
        case .writerBusy(let p): return "\(p): another FlowMeter process is writing to this database (one writer at a time)"
        case .writeFailed(let p, let r): return "\(p): could not write to the accounting database: \(r); counts are kept in memory and retried"
        case .readFailed(let p, let r): return "\(p): could not read the accounting database: \(r)"
        case .invalidConfiguration(let r): return "store configuration: \(r)"
        case .notAFile(let p, let what): return "\(p): is \(what), not a database file; refusing to open it"
        case .unexpectedSchema(let p, let r):
            return "\(p): \(r), which FlowMeter never makes: the file was edited by hand or built to hang its readers; refusing to touch it"
        }
    }

    /// One sentence for SQLite's result codes a person can act on.
    static func reason(_ error: any Error) -> String {
        if let e = error as? QueryTimeLimit.QueryTimedOut { return e.description }
        guard let e = error as? DatabaseError else { return "\(error)" }
        switch e.resultCode {
        case .SQLITE_FULL: return "the disk is full (SQLITE_FULL)"
        case .SQLITE_READONLY: return "the database or its directory is read-only (\(e.extendedResultCode))"
        case .SQLITE_CANTOPEN: return "the file cannot be opened or created: check the directory exists and is writable (SQLITE_CANTOPEN)"
        case .SQLITE_IOERR: return "an I/O error (\(e.extendedResultCode)): the disk may be full, read-only or failing"
        case .SQLITE_BUSY, .SQLITE_LOCKED: return "the database stayed locked past the busy timeout"
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return "the file is damaged or not a database (\(e.resultCode)\(e.message.map { ": " + $0 } ?? ""))"
        default: return e.message ?? "\(e.resultCode)"
        }
    }
}

/// The store's schema, versioned like vnstat's `dbversion` but through GRDB's
/// migrator. `PRAGMA user_version` carries the number so any tool (and an
/// older FlowMeter) can read it without knowing GRDB; `application_id` marks
/// the file as ours so a stray SQLite file is never migrated.
public enum StoreSchema {
    /// The version this build writes and reads.
    public static let currentVersion = 5
    /// "FlMt": stamped in the SQLite header.
    static let applicationID: Int32 = 0x466C_4D74

    /// Every persisted column, for `flowmeter db audit` and docs/storage.md. A
    /// test compares this list with the live schema, so it cannot drift.
    public static let audit: [(table: String, column: String, meaning: String)] = [
        ("info", "name", "setting name: schema_version, created_utc, last_flush_utc, clean_shutdown"),
        ("info", "value", "its value (integers as text; instants as UTC seconds)"),
        ("bucket", "resolution_seconds", "bucket length: 300, 3600 or 86400"),
        ("bucket", "start_utc", "bucket start, UTC seconds since 1970, a multiple of resolution_seconds"),
        ("bucket", "relay", "relay label from the host model (\"host\" or a configured relay name)"),
        ("bucket", "category", "traffic category label (or_inbound, or_outbound, dir, exit, dns, other, non_ip, undecoded)"),
        ("bucket", "direction", "in, out, or none (undecoded packets)"),
        ("bucket", "packets", "packets counted in the bucket"),
        ("bucket", "bytes", "wire bytes (pcap len)"),
        ("bucket", "payload_bytes", "transport payload bytes"),
        ("bucket", "tor_payload_bytes", "transport payload with non-internal peers"),
        ("gap", "start_utc", "start of a span whose counts are a lower bound, UTC seconds"),
        ("gap", "end_utc", "its end, UTC seconds"),
        ("gap", "reason", "agent_stopped, agent_crashed, clock_jump, capture_drops, capture_gap, or a reason a caller names"),
        ("state", "name", "continuity value named by a quota or the agent (e.g. a period's start)"),
        ("state", "value", "its value as text"),
        ("state", "updated_utc", "when it was last set, UTC seconds"),
        ("surge", "start_utc", "start of a surge of one cell (rate far above its baseline), UTC seconds"),
        ("surge", "end_utc", "its end, or the last flush while it lasts, UTC seconds"),
        ("surge", "open", "1 while the surge lasted at the last flush, else 0"),
        ("surge", "relay", "relay label of the cell"),
        ("surge", "category", "traffic category label of the cell"),
        ("surge", "direction", "in or out"),
        ("surge", "kind", "rate, attempts (unanswered connection attempts) or udp (UDP to ports no relay listens on)"),
        ("surge", "bytes", "wire bytes counted in the cell during the surge"),
        ("capture_import", "first_ns", "an imported capture's first packet time, UTC nanoseconds"),
        ("capture_import", "last_ns", "its last packet time, UTC nanoseconds"),
        ("capture_import", "packets", "its packet count"),
        ("capture_import", "bytes", "its wire bytes"),
        ("capture_import", "records_hash", "FNV-1a hash of its first 1,024 records (a fingerprint; no record is kept)"),
        ("capture_import", "imported_utc", "when it was imported (the replay clock's last instant), UTC seconds"),
        ("imported_usage", "relay", "relay label the imported counts are filed under (\"host\" for an interface)"),
        ("imported_usage", "start_utc", "start of the period the other tool counted from, UTC seconds"),
        ("imported_usage", "end_utc", "the instant its counts run to, UTC seconds"),
        ("imported_usage", "read_bytes", "bytes received in [start_utc, end_utc) by the other tool's count"),
        ("imported_usage", "written_bytes", "bytes sent in [start_utc, end_utc) by the other tool's count"),
        ("imported_usage", "source", "tor-state, vnstat-json or vnstat-db"),
        ("imported_usage", "imported_utc", "when `flowmeter import` stored it, UTC seconds"),
    ]

    /// v1, the first layout (buckets and settings). Kept byte-for-byte so a
    /// v1 file migrates the same way on every machine; the tests build their
    /// v1 file from it too.
    static let versionOne = """
        CREATE TABLE info(name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
        CREATE TABLE bucket(
            resolution_seconds INTEGER NOT NULL CHECK (resolution_seconds > 0),
            start_utc INTEGER NOT NULL,
            relay TEXT NOT NULL,
            category TEXT NOT NULL,
            direction TEXT NOT NULL,
            packets INTEGER NOT NULL DEFAULT 0 CHECK (packets >= 0),
            bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
            payload_bytes INTEGER NOT NULL DEFAULT 0 CHECK (payload_bytes >= 0),
            tor_payload_bytes INTEGER NOT NULL DEFAULT 0 CHECK (tor_payload_bytes >= 0),
            PRIMARY KEY (resolution_seconds, start_utc, relay, category, direction)
        ) WITHOUT ROWID;
        INSERT INTO info(name, value) VALUES ('schema_version', '1');
        PRAGMA application_id = 1181502836;
        PRAGMA user_version = 1;
        """

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in try db.execute(sql: versionOne) }
        // v2: spans whose counts are a lower bound (downtime, drops, clock
        // jumps: recorded as unknown, never as zero) and named continuity state for quotas.
        // `gap` is a rowid table on purpose: SQLite 3.40.1 (Debian 12) reports
        // a false "NULL value in gap.end_utc" from integrity_check for this
        // shape as WITHOUT ROWID, and `db check` must be able to say "ok".
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE gap(
                    start_utc INTEGER NOT NULL,
                    end_utc INTEGER NOT NULL CHECK (end_utc >= start_utc),
                    reason TEXT NOT NULL,
                    PRIMARY KEY (start_utc, reason)
                );
                CREATE TABLE state(name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, updated_utc INTEGER NOT NULL);
                UPDATE info SET value = '2' WHERE name = 'schema_version';
                PRAGMA user_version = 2;
                """)
        }
        // v3: surge spans per cell (docs/agent.md, "Surges"), so reports and
        // forecasts can tell floods from growth. No peer, no port.
        m.registerMigration("v3") { db in
            try db.execute(sql: """
                CREATE TABLE surge(
                    start_utc INTEGER NOT NULL,
                    end_utc INTEGER NOT NULL CHECK (end_utc >= start_utc),
                    open INTEGER NOT NULL DEFAULT 0 CHECK (open IN (0, 1)),
                    relay TEXT NOT NULL,
                    category TEXT NOT NULL,
                    direction TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
                    PRIMARY KEY (start_utc, relay, category, direction)
                );
                UPDATE info SET value = '3' WHERE name = 'schema_version';
                PRAGMA user_version = 3;
                """)
        }
        // v4: a period's counts imported from tor's state file or vnstat, so
        // an agent installed mid-period can report the whole period. Its own
        // step, separate from other additions, so merges stay additive.
        m.registerMigration("v4-imported-usage") { db in
            try db.execute(sql: """
                CREATE TABLE imported_usage(
                    relay TEXT NOT NULL,
                    start_utc INTEGER NOT NULL,
                    end_utc INTEGER NOT NULL CHECK (end_utc >= start_utc),
                    read_bytes INTEGER NOT NULL CHECK (read_bytes >= 0),
                    written_bytes INTEGER NOT NULL CHECK (written_bytes >= 0),
                    source TEXT NOT NULL,
                    imported_utc INTEGER NOT NULL,
                    PRIMARY KEY (relay, start_utc)
                );
                UPDATE info SET value = '4' WHERE name = 'schema_version';
                PRAGMA user_version = 4;
                """)
        }
        // v5: captures `replay --db` imported, by content fingerprint, written
        // in the same transaction as their counts: a capture is counted once.
        m.registerMigration("v5-capture-import") { db in
            try db.execute(sql: """
                CREATE TABLE capture_import(
                    first_ns INTEGER NOT NULL,
                    last_ns INTEGER NOT NULL,
                    packets INTEGER NOT NULL,
                    bytes INTEGER NOT NULL,
                    records_hash INTEGER NOT NULL,
                    imported_utc INTEGER NOT NULL,
                    PRIMARY KEY (first_ns, last_ns, packets, bytes, records_hash)
                );
                UPDATE info SET value = '5' WHERE name = 'schema_version';
                PRAGMA user_version = 5;
                """)
        }
        return m
    }

    /// The one decision on a file's schema version (as vnstat's `db_validate`):
    /// a newer file (or one whose migrations this build does not know) is
    /// refused by everyone and left as it was; an older one is migrated by a
    /// writer and refused by a reader, which changes nothing.
    /// - Returns: whether a writer must migrate the file first.
    static func validate(_ version: Int, superseded: Bool = false, forWriting: Bool, path: String) throws(StoreError) -> Bool {
        if version > currentVersion || superseded {
            throw StoreError.newerSchema(path: path, found: version, supported: currentVersion)
        }
        if version < currentVersion && !forWriting {
            throw StoreError.olderSchema(path: path, found: version, supported: currentVersion)
        }
        return version < currentVersion
    }

    /// Reads the version stamped in the file without changing it: 0 for an
    /// empty (new) file. Throws for a file that is not ours.
    static func inspect(_ db: Database, path: String) throws -> Int {
        let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        let tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
        if appID != applicationID && !(appID == 0 && tables == 0) { throw StoreError.notAFlowMeterDatabase(path: path) }
        try refuseForeignObjects(db, path: path)
        return version
    }

    /// Tables FlowMeter's migrations create, by name.
    static let tableNames: Set<String> = ["info", "bucket", "gap", "state", "surge", "capture_import", "imported_usage"]

    /// A view under one of FlowMeter's table names (an endless recursive one
    /// hangs every reader) or any trigger (it would run inside the writer's
    /// flushes) is refused at open. Other extra objects are harmless here;
    /// `db check` lists them.
    static func refuseForeignObjects(_ db: Database, path: String) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT type, name FROM sqlite_master")
        for row in rows {
            let type = (row["type"] as DatabaseValue?).flatMap { String.fromDatabaseValue($0) } ?? "?"
            let name = (row["name"] as DatabaseValue?).flatMap { String.fromDatabaseValue($0) } ?? "?"
            let shown = String(name.prefix(60))
            if type == "trigger" { throw StoreError.unexpectedSchema(path: path, reason: "it holds a trigger '\(shown)'") }
            if tableNames.contains(name) && type != "table" {
                throw StoreError.unexpectedSchema(path: path, reason: "'\(shown)' is a \(String(type.prefix(20))), not a table")
            }
        }
    }
}
