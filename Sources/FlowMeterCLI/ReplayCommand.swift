import ArgumentParser
import FlowMeter

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

    @Argument(help: ArgumentHelp("Capture files.", valueName: "FILE"))
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one capture FILE") }
    }

    func run() throws {
        let loaded = try configOptions.load()
        let showProgress = Diagnostics.stderrIsTerminal
        var accumulator: BucketAccumulator? = nil
        if let db {
            do {
                accumulator = try BucketAccumulator(path: db, relayLabels: loaded.model.relayLabels)
            } catch {
                Diagnostics.error("\(db): \(error)")
                throw ExitCode(2)
            }
            if let e = accumulator?.openError { Diagnostics.error("\(db): \(e); counting in memory and retrying") }
        }
        let result = Replay.run(files: files, model: loaded.model, accumulator: accumulator, progress: showProgress ? { path, capture, totals in
            let percent = capture.fileSize > 0 ? Double(capture.bytesConsumed) / Double(capture.fileSize) * 100 : 0
            Diagnostics.write("\r\(path): \(Int(percent))% \(totals.packets) packets")
        } : nil)
        if showProgress { Diagnostics.write("\r\u{1B}[K") }
        let report = ReplayReport(result)
        print(json ? report.json() : report.table(), terminator: json ? "\n" : "")
        for error in result.errors { Diagnostics.error(error.description) }
        var storeFailed = false
        if let accumulator {
            do { try accumulator.close() } catch {
                Diagnostics.error("\(db ?? ""): counts could not be saved: \(error)")
                storeFailed = true
            }
        }
        if !result.invariantHolds {
            Diagnostics.error("internal: categories and reasons do not add up to the packets read; please report this")
        }
        if !result.errors.isEmpty || !result.invariantHolds || storeFailed { throw ExitCode(1) }
    }
}
