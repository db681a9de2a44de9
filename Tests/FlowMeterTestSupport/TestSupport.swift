import Foundation

/// Paths relative to the repository, found from this file, never absolute.
enum Repo {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The outside capture corpus kept in the repository (Tests/Corpus/pcap/README.md).
    static let corpus: URL = root.appendingPathComponent("Tests/Corpus/pcap")
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

    /// The built `flowmeter` executable, beside the test bundle. Every test
    /// that runs it goes through here, so every run is hermetic (HermeticRoot).
    static var flowmeterBinary: String {
        _ = HermeticRoot.path
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

/// Runs a program to completion, bounded by `timeout` seconds (killed by
/// PID after): the one process runner of the tests. A name without a slash
/// is found on the PATH. Output goes to files, not pipes: a child that fills
/// a pipe nobody reads would hang, and a daemon it leaves behind (tmux)
/// would keep a pipe open forever.
@discardableResult
func runProcess(_ executable: String, _ arguments: [String], cwd: String? = nil, timeout: TimeInterval = 600) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    p.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let base = makeTemporaryDirectory("run")
    defer { try? FileManager.default.removeItem(atPath: base) }
    writeFile(base + "/out")
    writeFile(base + "/err")
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + "/out"))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + "/err"))
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus,
                         stdout: (try? String(contentsOfFile: base + "/out", encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: base + "/err", encoding: .utf8)) ?? "")
}

/// A new, empty directory under the system's temporary directory: the one
/// temporary-directory maker of the tests (the caller removes it).
func makeTemporaryDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowmeter-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

/// Writes `contents` to `path`, replacing it: the one file writer of the
/// tests. A test that cannot write in its own temporary directory stops here,
/// naming the file, rather than failing later for a reason that hides it.
func writeFile(_ path: String, _ contents: Data = Data()) {
    guard FileManager.default.createFile(atPath: path, contents: contents) else {
        preconditionFailure("cannot write \(path)")
    }
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

/// An empty system root every `flowmeter` a test starts reads in place of
/// `/` (FLOWMETER_SYSTEM_ROOT, set once for this test process and inherited by
/// its children): the host's /etc/tor, /etc/flowmeter and /var/lib/flowmeter
/// never leak into a test. A test that wants a layout passes `--system-root`.
enum HermeticRoot {
    static let path: String = {
        let dir = makeTemporaryDirectory("system-root")
        setenv("FLOWMETER_SYSTEM_ROOT", dir, 1)
        return dir
    }()
}
