import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Count captures (pcap or pcapng) as fast as the machine allows.",
        discussion: """
        Exit status: 0 when every file was read whole; 1 when a file was missing, \
        not a capture, or cut short (what could be counted is counted and shown); \
        2 for a configuration error (nothing is read).
        """
    )

    @OptionGroup var configOptions: ConfigOptions

    @Flag(help: "Print the versioned JSON document (docs/replay-json.md) instead of a table.")
    var json = false

    @Option(help: ArgumentHelp("Accounting store (SQLite): the captures' timestamps become its history.", valueName: "FILE"))
    var db: String?

    @Option(help: ArgumentHelp("Worker threads (default: one per spare core, at least 1). With --db the replay runs on one thread so the store sees packets in capture order.", valueName: "N"))
    var workers: Int = EngineConfiguration.defaultWorkers

    @Option(help: ArgumentHelp("Flow-table entries over all workers (memory: 60 bytes each).", valueName: "N"))
    var flowTableCapacity: Int = FlowTableConfiguration.defaultCapacity

    @Option(help: ArgumentHelp("Who reads the records: automatic (FlowMeter's own readers for plain pcap and pcapng files, libpcap for the rest) or libpcap (always; a pcapng is then read up to its second link type).", valueName: "READER"))
    var reader: OfflineReader = .automatic

    @Argument(help: ArgumentHelp("Capture files.", valueName: "FILE"))
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one capture FILE") }
        if workers < 1 || workers > 256 { throw ValidationError("--workers must be 1…256") }
        if flowTableCapacity < 1024 { throw ValidationError("--flow-table-capacity must be at least 1024") }
    }

    func run() throws {
        // Checked before any warning is printed, as `run` does: the same error, exit 2.
        let loaded = try configOptions.load(warn: false)
        let store: StoreSettings
        do { store = try configOptions.serviceSettings(loaded).store } catch {
            throw CommandFailure.configuration("\(error)")
        }
        for w in loaded.warnings { Diagnostics.warn(w) }
        let progressLine = Diagnostics.stderrIsTerminal && !json ? ReplayProgress(files: files) : nil
        var accumulator: BucketAccumulator? = nil
        if let db {
            do {
                accumulator = try BucketAccumulator(path: db, configuration: store.configuration, relayLabels: loaded.model.relayLabels)
            } catch {
                throw CommandFailure.store(error, path: db)
            }
            if let e = accumulator?.openError { Diagnostics.error("\(db): \(e); counting in memory and retrying") }
        }
        var plan = ReplayImports.Plan(files: files, skipping: [])
        if let accumulator, let db {
            do { plan = try ReplayImports.select(files, accumulator: accumulator, db: db) } catch {
                throw CommandFailure.store(error, path: db)
            }
            if plan.files.isEmpty { try? accumulator.close(); return }
        }
        let progress: ((String, OfflineCapture, ReadTotals) -> Void)? = progressLine.map { p in
            { path, capture, totals in p.update(path: path, capture: capture, totals: totals) }
        }
        let clock = accumulator.map(BucketClock.init(accumulator:))
        let engine = ReplayEngine.replay(files: plan.files, model: loaded.model, workers: workers,
                                         flowTableCapacity: flowTableCapacity, reader: reader, clock: clock,
                                         skipping: plan.skipping, progress: progress)
        let result = engine.replay
        let report = ReplayReport(engine)
        progressLine?.clear()
        print(json ? report.json() : report.table(), terminator: json ? "\n" : "")
        for error in result.errors { Diagnostics.error(error.description) }
        var storeFailed = false
        if let accumulator {
            do { try accumulator.close() } catch {
                Diagnostics.error("\(db ?? ""): counts could not be saved: \(error); nothing of this import was stored, so \(ReplayImports.missingDays(result.totals)) (UTC) are missing: re-run the same command when it can write, it counts them once")
                storeFailed = true
            }
        }
        if !result.invariantHolds {
            Diagnostics.error("internal: categories and reasons do not add up to the packets read; please report this")
        }
        if !result.errors.isEmpty || !result.invariantHolds || storeFailed { throw ExitCode(1) }
    }
}

extension OfflineReader: ExpressibleByArgument {}
