import Foundation
import Testing
@testable import FlowMeterTestSupport

/// One error style and one exit-status table for every command
/// (docs/agent.md, "Exit status"): `flowmeter: error: …`, then 64 for a
/// usage error, 2 for configuration, 3 for a store that cannot be used,
/// 1 for a failure while running.
@Suite struct ErrorStyleTests {
    static let store: String = {
        let db = makeTemporaryDirectory("error-style") + "/acct.db"
        let acc = try! BucketAccumulator(path: db, relayLabels: ["host", "guard1"])
        var s = CounterSnapshot(layout: CounterLayout(relayCount: 2))
        s.values[CounterLayout(relayCount: 2).index(CounterSlot(relay: 1, category: .orInbound, direction: .inbound), .bytes)] = 1 << 20
        acc.observe(s, at: Date(timeIntervalSince1970: 1_772_323_200))
        try! acc.close()
        return db
    }()

    func run(_ args: [String], as user: [String] = []) throws -> ProcessResult {
        if user.isEmpty { return try runProcess(Repo.flowmeterBinary, args, timeout: 60) }
        return try runProcess(user[0], Array(user.dropFirst()) + [Repo.flowmeterBinary] + args, timeout: 60)
    }

    @Test func everyCommandFailsInTheHouseStyleWithTheTablesExitStatus() throws {
        let cases: [(args: [String], status: Int32, first: String)] = [
            (["report", "--bogus"], 64, "flowmeter: error: Unknown option '--bogus'"),
            (["report", "--tz", "Mars/Olympus"], 64, "flowmeter: error: unknown time zone 'Mars/Olympus'"),
            (["top", "--count", "0"], 64, "flowmeter: error: --count must be at least 1"),
            (["forecast", "--db", Self.store, "--quota", "q 10GB month 1 00:00 sum"], 2, "flowmeter: error: configuration: --quota: "),
            (["report", "--db", "/nonexistent/acct.db"], 3, "flowmeter: error: /nonexistent/acct.db: cannot open the accounting database: no such file"),
            (["forecast", "--db", "/nonexistent/acct.db", "--quota", "q 1TiB month 1 00:00 sum"], 3, "flowmeter: error: /nonexistent/acct.db: "),
            (["db", "check", "--db", "/nonexistent/acct.db"], 3, "flowmeter: error: /nonexistent/acct.db: "),
            (["report", "--db", Self.store, "--svg", "/nonexistent/charts.svg"], 1, "flowmeter: error: /nonexistent/charts.svg: no such file or directory"),
            (["replay", "/nonexistent/x.pcap"], 1, "flowmeter: error: /nonexistent/x.pcap: no such file"),
        ]
        for c in cases {
            let r = try run(c.args)
            #expect(r.status == c.status, "\(c.args): exit \(r.status): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n").map(String.init)
            #expect(lines.first { $0.hasPrefix("flowmeter: error:") }?.hasPrefix(c.first) == true, "\(c.args): \(r.stderr)")
            #expect(!r.stderr.contains("Error: "), "\(c.args): argument-parser's own style leaked: \(r.stderr)")
            // After the error line only a usage error adds lines, and those are its usage.
            for line in lines where !line.hasPrefix("flowmeter: ") {
                #expect(c.status == 64 && (line.hasPrefix("Usage: ") || line.hasPrefix("  See ") || line.hasPrefix("Help: ")), "\(c.args): \(line)")
            }
        }
        let version = try run(["--version"])
        #expect(version.status == 0 && version.stderr.isEmpty && !version.stdout.isEmpty)
        let help = try run(["report", "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE:") && help.stderr.isEmpty)
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root and setpriv (util-linux) to run as another user"))
    func aStoreThisUserCannotReadIsPermissionDeniedNotNoSuchFile() throws {
        let dir = makeTemporaryDirectory("error-style-private")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let closed = dir + "/state", open = dir + "/open"
        for d in [closed, open] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        for d in [closed, open] {
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: Self.store + suffix) {
                try FileManager.default.copyItem(atPath: Self.store + suffix, toPath: d + "/acct.db" + suffix)
            }
        }
        chmod(dir, 0o755); chmod(closed, 0o700); chmod(open, 0o755); chmod(open + "/acct.db", 0o600)
        let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        for (db, words) in [(closed + "/acct.db", "cannot enter \(closed)"), (open + "/acct.db", "cannot read it")] {
            for args in [["report", "--db", db], ["forecast", "--db", db, "--quota", "q 1TiB month 1 00:00 sum"], ["db", "check", "--db", db]] {
                let r = try run(args, as: nobody)
                #expect(r.status == 3, "\(args): exit \(r.status): \(r.stderr)")
                #expect(r.stderr.hasPrefix("flowmeter: error: \(db): permission denied: ") && r.stderr.contains(words), "\(args): \(r.stderr)")
                #expect(!r.stderr.contains("no such file"), "\(args): \(r.stderr)")
            }
        }
        // The same user reads a store it may read.
        chmod(open + "/acct.db", 0o644)
        let readable = try run(["report", "--db", open + "/acct.db"], as: nobody)
        #expect(readable.status == 0 || !readable.stderr.contains("permission denied"), "\(readable.stderr)")
    }
}
