import Foundation
@testable import FlowMeterCore
@testable import FlowMeterCapture
@testable import FlowMeterConfig
@testable import FlowMeterAccounting
@testable import FlowMeterStore
@testable import FlowMeterReports
@testable import FlowMeterExport
@testable import FlowMeterAgent
@testable import FlowMeterFormat

/// Paths relative to the repository, found from this file, never absolute.
enum Repo {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// ../shared/corpus/pcap beside the repository.
    static let corpus: URL = root.deletingLastPathComponent().appendingPathComponent("shared/corpus/pcap")
    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// Every capture in the outside corpus, sorted.
    static var corpusFiles: [String] {
        var out: [String] = []
        for folder in ["libpcap", "tcpdump"] {
            let dir = corpus.appendingPathComponent(folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            out += names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.map { dir.appendingPathComponent($0).path }
        }
        return out.sorted()
    }

    /// The built `flowmeter` executable, beside the test bundle.
    static var flowmeterBinary: String {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("flowmeter").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/flowmeter").path
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion (bounded by `timeout` seconds; killed by PID after).
@discardableResult
func runProcess(_ executable: String, _ arguments: [String], cwd: String? = nil, timeout: TimeInterval = 600) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    p.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    // Read both pipes concurrently so a chatty child cannot block on a full pipe.
    nonisolated(unsafe) var outData = Data(), errData = Data()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    group.wait()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

func makeTemporaryDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowmeter-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

/// The oracle: captures of a busy relay host written by scripts/gen_relay_capture.py
/// with the exact counters expected under docs/classification.md.
struct GeneratedRelayHost: @unchecked Sendable {
    let directory: String
    let expected: [String: Any]

    static let shared: GeneratedRelayHost = {
        let dir = makeTemporaryDirectory("oracle")
        let r = try! runProcess("python3", [Repo.path("scripts/gen_relay_capture.py"), "--out", dir])
        precondition(r.status == 0, "generator failed: \(r.stderr)")
        let data = FileManager.default.contents(atPath: dir + "/expected.json")!
        return GeneratedRelayHost(directory: dir, expected: try! JSONSerialization.jsonObject(with: data) as! [String: Any])
    }()

    var args: [String: Any] { expected["args"] as! [String: Any] }
    var files: [String: [String: Any]] { expected["files"] as! [String: [String: Any]] }
    func path(_ name: String) -> String { directory + "/" + name }

    func load() throws -> LoadedConfig {
        let torrcs = (args["torrc"] as! [String]).map(path)
        return try ConfigLoader.load(torrcs: torrcs, consensus: (args["consensus"] as? String).map(path),
                                     config: (args["config"] as? String).map(path))
    }
}

/// One file set through the one replay driver, with one worker and a small
/// flow table (the corpus has ~870 files; a full table per file is wasted).
func replayOnce(files: [String], model: HostModel, reader: OfflineReader = .automatic,
                clock: (any ReplayClock)? = nil) -> ReplayResult {
    ReplayEngine.replay(files: files, model: model, workers: 1, flowTableCapacity: 4096, reader: reader,
                        clock: clock).replay
}
