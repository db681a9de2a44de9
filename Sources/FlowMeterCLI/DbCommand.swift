import FlowMeterFormat
import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore
import Foundation

/// `flowmeter db`: look after the accounting database.
struct DbCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Audit, check, migrate or export the accounting database.",
        subcommands: [Audit.self, Check.self, Migrate.self, Export.self, Soak.self])

    /// A store that cannot be used: exit 3, as in every command.
    static func fail(_ e: StoreError, _ command: String) -> CommandFailure { .data(e.description) }

    /// Every persisted column and what it holds: no addresses, ports or flows.
    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every column the store persists (what is kept on disk).")
        @Option(name: .long, help: "Also list the columns of this database file as it is.") var db: String?

        func run() throws {
            print(TextTable(header: ["table", "column", "holds"], rows: StoreSchema.audit.map { [$0.table, $0.column, $0.meaning] },
                            rightAlignedFrom: 3, trimsTrailingSpaces: true).render(), terminator: "")
            print("No peer address, port or per-flow record is ever stored.")
            guard let db else { return }
            do {
                let live = try StoreAccess.reader(db).liveColumns()
                print("\n\(db): " + live.map { "\($0.table).\($0.column)" }.joined(separator: ", "))
            } catch let e as StoreError { throw DbCommand.fail(e, "audit") }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run PRAGMA integrity_check and quick_check, compare the schema with this build's, check every row, and show what the file holds.")
        @Option(name: .long) var db: String

        func run() throws {
            do {
                let reader = try StoreAccess.reader(db)
                let integrity = try reader.integrityCheck(), quick = try reader.quickCheck()
                let audit = try reader.audit()
                print("schema version \(reader.schemaVersion); integrity: \(integrity.joined(separator: "; ")); quick check: \(quick.joined(separator: "; "))")
                for problem in audit.schemaProblems + audit.rowProblems { print(problem) }
                // Listing what the file holds reads those rows: only when they are sound.
                guard integrity == ["ok"], quick == ["ok"], audit.isClean else {
                    throw CommandFailure.data("\(db): damaged (see above)")
                }
                for r in try reader.resolutions() {
                    print("resolution \(r.resolution): \(r.rows) rows, \(Format.iso8601(r.firstStart)) … \(Format.iso8601(r.lastStart))")
                }
                let info = try reader.info()
                let lastFlush = info["last_flush_utc"].flatMap { Int64($0) }.map { Format.iso8601(seconds: $0) }
                print("last flush: \(lastFlush ?? "never"); closed cleanly: \(info["clean_shutdown"] == "1" ? "yes" : "no (a writer is running, or it crashed)")")
            } catch let e as StoreError { throw DbCommand.fail(e, "check") }
        }
    }

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Upgrade an older database to this build's schema (a writer does it on open too).")
        @Option(name: .long) var db: String

        func run() throws {
            do {
                let store = try AccountingStore(path: db)
                try store.close()
                print("\(db): schema version \(StoreSchema.currentVersion)")
            } catch let e as StoreError { throw DbCommand.fail(e, "migrate") }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write every stored bucket and gap as CSV (the store's own rows, UTC).")
        @Option(name: .long) var db: String

        func run() throws {
            do {
                let reader = try StoreAccess.reader(db)
                let all = (Date(timeIntervalSince1970: -1e12), Date(timeIntervalSince1970: 1e12))
                print((["kind", "resolution_seconds", "start_utc", "end_utc", "relay", "category", "direction"]
                       + CellField.all.map(\.name) + ["reason"]).joined(separator: ","))
                for r in try reader.resolutions() {
                    for b in try reader.buckets(from: all.0, to: all.1, resolution: r.resolution) {
                        let s = Int64(b.start.timeIntervalSince1970)
                        print("bucket,\(b.durationSeconds),\(s),\(s + Int64(b.durationSeconds)),\(b.relay),\(b.category),\(b.direction),"
                              + CellField.all.map { String(b.cell.counts[$0]) }.joined(separator: ",") + ",")
                    }
                }
                for g in try reader.gapRecords(from: all.0, to: all.1) {
                    print("gap,,\(g.startUTC),\(g.endUTC),,,," + String(repeating: ",", count: CellField.count) + "\(g.reason)")
                }
            } catch let e as StoreError { throw DbCommand.fail(e, "export") }
        }
    }

    /// For the durability test: counts synthetic packets against the real
    /// clock, flushing every --flush-seconds, until killed. Prints
    /// `counted N` after each observation and `flushed N` after each
    /// successful flush, so the test knows what was promised to be durable.
    struct Soak: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write synthetic counts until killed (durability test).",
                                                        shouldDisplay: false)
        @Option(name: .long) var db: String
        @Option(name: .long) var flushSeconds: Int64 = 1
        @Option(name: .long, help: "Packets per second.") var rate: Int = 200
        @Option(name: .long, help: "Stop after this many packets (0: never).") var limit: UInt64 = 0

        func run() throws {
            let config = StoreConfiguration(resolutions: [ResolutionRetention(.hour, keepDays: nil), ResolutionRetention(.day, keepDays: nil)],
                                            flushIntervalSeconds: flushSeconds)
            let acc: BucketAccumulator
            do { acc = try BucketAccumulator(path: db, configuration: config, relayLabels: ["host", "relay1"]) }
            catch let e as StoreError { throw DbCommand.fail(e, "soak") }
            let block = CounterBlock(layout: CounterLayout(relayCount: 2))
            var packet = PacketSummary()
            packet.wireLength = 1000
            packet.payloadLength = 900
            var counted: UInt64 = 0
            let pause = UInt32(1_000_000 / max(1, rate))
            while limit == 0 || counted < limit {
                block.count(packet, into: CounterSlot(relay: Int(counted % 2), category: .orInbound, direction: .inbound),
                            peerIsTorInternal: false)
                counted += 1
                let flushesBefore = acc.stats.flushes
                acc.observe(block.snapshot(), at: Date())
                // Unbuffered writes: a line the test reads was written before the kill.
                var line = "counted \(counted)\n"
                if acc.stats.flushes > flushesBefore { line += "flushed \(counted)\n" }
                FileHandle.standardOutput.write(Data(line.utf8))
                usleep(pause)
            }
            do { try acc.close() } catch let e as StoreError { throw DbCommand.fail(e, "soak") }
            print("closed \(counted)")
        }
    }
}
