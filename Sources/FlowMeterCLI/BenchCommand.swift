import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterFormat
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore
import Foundation

/// `flowmeter bench FILE...`: in one process and on the same file, the libpcap
/// floor, the pipeline with one worker reading through libpcap, and the
/// pipeline with one worker and with N workers reading through `--reader`, each
/// repeated; see BENCHMARKS.md. Build it in release mode to measure anything.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the replay pipeline against the libpcap floor on capture files.")

    @Argument(help: "Capture files (pcap or pcapng).")
    var files: [String]

    @Option(help: "Workers for the multi-worker run (default: one per spare CPU, at least 2).")
    var workers: Int?

    @Option(help: "Times each stage is run (at least 5 for a published number).")
    var `repeat`: Int = 5

    @Option(help: "Flow-table entries over all workers.")
    var flowTableCapacity: Int = FlowTableConfiguration.defaultCapacity

    /// The host the captures were generated for: scripts/gen_bench_captures.py
    /// writes its torrcs, config and consensus beside the captures.
    @OptionGroup var configOptions: ConfigOptions

    @Option(help: ArgumentHelp("Who reads the records in the pipeline stages: automatic (a buffered reader for plain pcap files, libpcap for the rest) or libpcap. The floor and the \"libpcap reader\" stage always use libpcap.", valueName: "READER"))
    var reader: OfflineReader = .automatic

    @Flag(help: "Print one JSON object per file instead of a table.")
    var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one capture file") }
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
        if let w = workers, w < 1 || w > 64 { throw ValidationError("--workers must be in 1...64") }
        guard flowTableCapacity >= FlowTable.bucketSize else {
            throw ValidationError("--flow-table-capacity must be at least \(FlowTable.bucketSize)")
        }
        guard !configOptions.torrcs.isEmpty || configOptions.configFile != nil else {
            throw ValidationError("describe the host with --torrc/--config (scripts/gen_bench_captures.py writes them beside the captures)")
        }
    }

    /// One stage of the benchmark and its runs on one file.
    struct Stage {
        var name: String
        var workers: Int
        var reader: String
        var runs: [Run] = []
        var rssBytes = 0
    }

    func run() throws {
        let n = workers ?? max(2, EngineConfiguration.defaultWorkers)
        let model = try configOptions.load().model
        var reports: [[String: Any]] = []
        for file in files {
            let stages = try measureStages(file: file, workers: n, model: model)
            if json {
                reports.append(jsonReport(file: file, stages: stages))
            } else {
                printTable(file: file, stages: stages)
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: reports, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// The floor, the pipeline with one worker through libpcap, and the
    /// pipeline with one and with `n` workers through `--reader`, each
    /// `repeat` times. Rounds interleave the stages so drift on a shared
    /// machine hits all alike.
    private func measureStages(file: String, workers n: Int, model: HostModel) throws -> [Stage] {
        // What `--reader` amounts to for this file (automatic: buffered for pcap, pcapng for pcapng, else libpcap).
        let chosen = try OfflineCapture(path: file, reader: reader).readerName
        let kinds: [(name: String, workers: Int, reader: OfflineReader)] = [
            ("libpcap floor", 0, .libpcap),
            ("pipeline, 1 worker, libpcap reader", 1, .libpcap),
            ("pipeline, 1 worker", 1, reader),
            ("pipeline, \(n) workers", n, reader),
        ]
        var stages = kinds.map { Stage(name: $0.name, workers: $0.workers, reader: $0.reader == .libpcap ? "libpcap" : chosen) }
        for _ in 0..<`repeat` {
            for (i, kind) in kinds.enumerated() {
                let sampler = RSSSampler()
                let run = try measure(file: file, workers: kind.workers, reader: kind.reader, model: model)
                stages[i].rssBytes = max(stages[i].rssBytes, sampler.stop())
                stages[i].runs.append(run)
            }
        }
        return stages
    }

    private func jsonReport(file: String, stages: [Stage]) -> [String: Any] {
        let floor = stages[0].runs
        let floorMedian = median(floor.map(\.packetsPerSecond))
        let floorBest = floor.map(\.packetsPerSecond).max()!
        var out: [String: Any] = ["file": (file as NSString).lastPathComponent, "packets": floor[0].packets,
                                  "wire_bytes": floor[0].bytes, "repeat": `repeat`,
                                  "flow_table_capacity": flowTableCapacity,
                                  "flow_table_bytes": FlowTableConfiguration(capacity: flowTableCapacity).bytesReserved]
        out["stages"] = stages.map { s -> [String: Any] in
            let pps = s.runs.map(\.packetsPerSecond)
            return ["name": s.name, "workers": s.workers, "reader": s.reader,
                    "median_pps": median(pps), "best_pps": pps.max()!,
                    "median_gbps": median(s.runs.map(\.gigabitsPerSecond)),
                    "best_gbps": s.runs.map(\.gigabitsPerSecond).max()!,
                    "median_ratio": median(pps) / floorMedian, "best_ratio": pps.max()! / floorBest,
                    "peak_rss_bytes": s.rssBytes,
                    "median_reader_cpu_ns_per_packet": median(s.runs.map(\.readerNanosPerPacket)),
                    "median_worker_cpu_ns_per_packet": median(s.runs.map(\.workerNanosPerPacket))]
        }
        return out
    }

    private func printTable(file: String, stages: [Stage]) {
        let floor = stages[0].runs
        let floorMedian = median(floor.map(\.packetsPerSecond))
        let floorBest = floor.map(\.packetsPerSecond).max()!
        print("\(file): \(floor[0].packets) packets, \(floor[0].bytes) wire bytes, \(`repeat`) runs per stage")
        print("  flow table: \(flowTableCapacity) entries, \(FlowTableConfiguration(capacity: flowTableCapacity).bytesReserved) bytes reserved")
        print("  reader: \(stages[2].reader) in the pipeline stages (--reader \(reader.rawValue)); libpcap in the floor and the libpcap-reader stage")
        let rows = stages.map { s -> [String] in
            let pps = s.runs.map(\.packetsPerSecond)
            return [s.name, fmt(median(pps) / 1e6), fmt(pps.max()! / 1e6), fmt(median(s.runs.map(\.gigabitsPerSecond))),
                    fmt(median(pps) / floorMedian), fmt(pps.max()! / floorBest), fmt(Double(s.rssBytes) / 1_048_576),
                    fmt(median(s.runs.map(\.readerNanosPerPacket))), fmt(median(s.runs.map(\.workerNanosPerPacket)))]
        }
        print(TextTable(header: ["stage", "median Mpps", "best Mpps", "median Gbit/s", "×floor med", "×floor best",
                                 "peak RSS MiB", "reader CPU ns/pkt", "workers CPU ns/pkt"],
                        rows: rows, rightAlignedFrom: 1).render(), terminator: "")
    }

    struct Run {
        var packets: UInt64
        var bytes: UInt64
        var seconds: Double
        /// CPU time of the reading thread and of all workers together.
        var readerCPUNanos: UInt64 = 0
        var workerCPUNanos: UInt64 = 0
        var readerNanosPerPacket: Double { Double(readerCPUNanos) / Double(max(packets, 1)) }
        var workerNanosPerPacket: Double { Double(workerCPUNanos) / Double(max(packets, 1)) }
        var packetsPerSecond: Double { Double(packets) / seconds }
        var gigabitsPerSecond: Double { Double(bytes) * 8 / seconds / 1e9 }
    }

    /// workers == 0: the floor (pcap_next_ex and nothing else).
    func measure(file: String, workers: Int, reader: OfflineReader, model: HostModel) throws -> Run {
        if workers == 0 {
            let capture = try OfflineCapture(path: file, reader: .libpcap)
            let start = now()
            let cpu = threadCPUNanos()
            let totals = capture.readFloor()
            return Run(packets: totals.packets, bytes: totals.bytes, seconds: now() - start,
                       readerCPUNanos: threadCPUNanos() - cpu)
        }
        var configuration = EngineConfiguration(workers: workers,
                                                flowTable: FlowTableConfiguration(capacity: flowTableCapacity))
        configuration.reader = reader
        let engine = ReplayEngine(model: model, configuration: configuration)
        let start = now()
        let cpu = threadCPUNanos()
        let result = engine.replay(files: [file])
        let seconds = now() - start
        let readerCPU = threadCPUNanos() - cpu
        if let e = result.errors.first { throw e }
        guard result.counters.accountedPackets == result.totals.packets else {
            throw CommandFailure.runtime("pipeline lost packets: \(result.counters.accountedPackets) of \(result.totals.packets)")
        }
        return Run(packets: result.totals.packets, bytes: result.totals.bytes, seconds: seconds,
                   readerCPUNanos: readerCPU, workerCPUNanos: result.workerCPUNanos.reduce(0, +))
    }

}

private func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

private func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

private func fmt(_ x: Double) -> String { String(format: "%.3f", x) }

/// The most resident memory seen while a stage ran, sampled from
/// /proc/self/statm every 2 ms on its own thread (VmHWM cannot be reset on
/// every kernel, and a process-lifetime peak would blame one stage for another).
private final class RSSSampler: @unchecked Sendable {
    // @unchecked Sendable — Safe: `peak` and `running` are touched only under `lock`.
    private let lock = NSLock()
    private var peak = 0
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init() {
        peak = currentRSS()
        Thread.detachNewThread { [self] in
            while true {
                let rss = currentRSS()
                lock.lock()
                peak = max(peak, rss)
                let keepGoing = running
                lock.unlock()
                if !keepGoing { break }
                usleep(2000)
            }
            done.signal()
        }
    }

    func stop() -> Int {
        lock.lock(); running = false; lock.unlock()
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return max(peak, currentRSS())
    }
}

private func currentRSS() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
