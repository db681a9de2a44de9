import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport

/// Values out of range on the command line, and a config `run` refuses: each
/// command says so in its own way (`check` one UNKNOWN line and exit 3,
/// `replay` the same error and exit 2 as `run`), never a trap, never a
/// backtrace. Hermetic: every command gets its own system root.
@Suite struct CheckOptionRangeTests {
    /// A store with ten days of known history ending a minute ago, and the
    /// agent's last observation then (so the data's age is measured), in its
    /// own directory.
    static let root: String = {
        let dir = makeTemporaryDirectory("check-ranges")
        let end = Date().addingTimeInterval(-60)
        try! KnownHistory.write(dir + "/acct.db", until: end)
        // What the agent writes at each flush (AgentStore): written here directly.
        let queue = try! DatabaseQueue(path: dir + "/acct.db")
        try! queue.write { db in
            try db.execute(sql: "INSERT INTO state(name, value, updated_utc) VALUES (?, ?, ?)",
                           arguments: [AccountingStore.lastObservationKey, String(Int64(end.timeIntervalSince1970 * 1e9)),
                                       Int64(end.timeIntervalSince1970)])
        }
        return dir
    }()

    func check(_ extra: [String]) throws -> ProcessResult {
        try runProcess(Repo.flowmeterBinary, ["check", "--system-root", Self.root, "--db", Self.root + "/acct.db",
                                              "--quota", KnownHistory.quotaSpec] + extra, timeout: 60)
    }

    @Test(arguments: [["--max-age", "99999999999999999999"], ["--max-age", "1e300d"], ["--warning-hours", "1e300"],
                      ["--critical-hours", "-1"], ["-w", "1e300"], ["-c", "@1e307:1e308"], ["--timeout", "99999999999999999999"],
                      ["--timeout", "100000000"]])
    func anOutOfRangeValueIsOneUnknownLineWithoutATrap(_ option: [String]) throws {
        let r = try check(option)
        #expect(r.status == 3, "\(option): status \(r.status) \(r.stdout) \(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("FLOWMETER UNKNOWN - ") && (lines[0].contains(option[0]) || lines[0].contains(option[1])),
                "\(option): \(r.stdout)")
        #expect(r.stderr.isEmpty, "\(option): \(r.stderr)")
    }

    @Test func theLongestAcceptedValuesEvaluate() throws {
        let r = try check(["--max-age", "36500d", "--warning-hours", "876600", "--critical-hours", "876600", "-t", "86400"])
        #expect([0, 1, 2].contains(r.status), "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.hasPrefix("FLOWMETER ") && r.stderr.isEmpty, "\(r.stdout) \(r.stderr)")
    }

    @Test func aMissingTorrcIsAConfigurationLineNotAnExitCode() throws {
        let r = try check(["--torrc", Self.root + "/no-such-torrc"])
        #expect(r.status == 3)
        #expect(r.stdout.hasPrefix("FLOWMETER UNKNOWN - configuration: ") && r.stdout.contains("no-such-torrc"), "\(r.stdout)")
        #expect(!r.stdout.contains("ExitCode"), "\(r.stdout)")
    }

    @Test(arguments: [("agent:\n  snaplen: lots\n", "agent.snaplen"), ("store:\n  bucket: 0s\n", "bucket"),
                      ("agent:\n  access_policy: [\"accept nonsense\"]\n", "agent.access_policy")])
    func replayRefusesWhatRunRefusesWithTheSameErrorAndExitCode(yaml: String, key: String) throws {
        let dir = makeTemporaryDirectory("replay-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try yaml.write(toFile: dir + "/flowmeter.yaml", atomically: true, encoding: .utf8)
        let common = ["--config", dir + "/flowmeter.yaml", "--system-root", dir]
        let run = try runProcess(Repo.flowmeterBinary, ["run", "--no-db"] + common, timeout: 30)
        let replay = try runProcess(Repo.flowmeterBinary, ["replay"] + common + [dir + "/none.pcap"], timeout: 30)
        #expect(run.status == 2 && run.stderr.contains(key), "run: \(run.stderr)")
        #expect(replay.status == 2, "replay: \(replay.status) \(replay.stderr)")
        #expect(replay.stderr == run.stderr, "run: \(run.stderr)\nreplay: \(replay.stderr)")
    }
}
