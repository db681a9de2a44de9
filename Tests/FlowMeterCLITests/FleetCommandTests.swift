import Foundation
import Testing
@testable import FlowMeterTestSupport

/// `flowmeter fleet` as a command: the plugin's one line and exit code for
/// every failure, configuration errors naming the line, and the rules
/// printed from the config file. The evaluation itself is tested against
/// real stores (FlowMeterFleetTests) and end to end (scripts/test_fleet.sh).
struct FleetCommandTests {
    func run(_ args: [String]) throws -> ProcessResult { try runProcess(Repo.flowmeterBinary, args, timeout: 60) }

    func config(_ text: String) throws -> (dir: String, path: String) {
        let dir = makeTemporaryDirectory("fleet")
        try text.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        return (dir, dir + "/fleet.yaml")
    }

    @Test func fleetCheckAnswersEveryFailureWithOneUnknownLineAndExitThree() throws {
        let (dir, path) = try config("pools:\n  - 'p 1TiB day 00:00 sum provider hosts=a,b'\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (args, words) in [
            (["fleet", "check", "--config", path], "--url"),                                        // usage
            (["fleet", "check", "--url", "https://x:1", "--config", path], "is not http://"),       // no TLS
            (["fleet", "check", "--url", "http://127.0.0.1:1", "--config", path], "cannot connect"), // nobody listens
            (["fleet", "check", "--url", "http://127.0.0.1:1", "--config", path, "--pool", "q"], "no pool 'q'"),
            (["fleet", "check", "--url", "http://127.0.0.1:1", "--config", dir + "/none.yaml"], "no such file"),
        ] {
            let r = try run(args)
            #expect(r.status == 3, "\(args): \(r.stdout)\(r.stderr)")
            #expect(r.stdout.hasPrefix("FLOWMETER UNKNOWN - ") && r.stdout.contains(words), "\(args): \(r.stdout)")
            #expect(r.stdout.split(separator: "\n").count == 1, "\(args): \(r.stdout)")
        }
        let help = try run(["fleet", "check", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--warning-hours"))
    }

    @Test func bothMonitoringPluginsRejectTheSameOutOfRangeValuesInTheSameWords() throws {
        let (dir, path) = try config("pools:\n  - 'p 1TiB day 00:00 sum provider hosts=a,b'\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fleet = ["fleet", "check", "--url", "http://127.0.0.1:1", "--config", path]
        let host = ["check", "--db", dir + "/none.db", "--quota", "q 1TiB"]
        for (extra, words) in [
            (["--timeout", "0"], "--timeout must be 1 to 86400 seconds"),
            (["--timeout", "99999999999"], "--timeout must be 1 to 86400 seconds"),
            (["--warning-hours", "1e300"], "--warning-hours must be a number of hours from 0 to 876600"),
            (["--critical-hours=-1"], "--critical-hours must be a number of hours from 0 to 876600"),
            (["-w", "80:x"], "80:x"),
        ] {
            let lines = try [fleet, host].map { args in
                let r = try run(args + extra)
                #expect(r.status == 3, "\(args + extra): \(r.stdout)\(r.stderr)")
                return r.stdout
            }
            #expect(lines[0] == lines[1], "\(extra): fleet says \(lines[0]), check says \(lines[1])")
            #expect(lines[0].hasPrefix("FLOWMETER UNKNOWN - ") && lines[0].contains(words), "\(extra): \(lines[0])")
        }
    }

    @Test func reportAndRulesStopOnABadPoolWithItsLineAndExitTwo() throws {
        let (dir, path) = try config("pools:\n  - 'p 1TiB day 00:00 sum provider hosts=a'\n  - 'q 1TiB day 00:00 sum'\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for args in [["fleet", "rules", "--config", path], ["fleet", "report", "--url", "http://127.0.0.1:1", "--config", path]] {
            let r = try run(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("fleet.yaml:3") && r.stderr.contains("has no hosts="), "\(args): \(r.stderr)")
        }
    }

    @Test func rulesArePrintedForEveryPoolOfTheConfigFile() throws {
        let (dir, path) = try config("pools:\n  - 'p 1TiB day 00:00 sum provider tz=UTC hosts=a,b'\n  - 'q 2TiB week 1 00:00 max wire:relay hosts=c'\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(["fleet", "rules", "--config", path, "--step", "1m"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("name: \"flowmeter-pool-p\"\n    interval: 1m") && r.stdout.contains("name: \"flowmeter-pool-q\""))
        #expect(r.stdout.contains(#"flowmeter_bytes_total{host=~"a|b"}[1m]"#))
        let one = try run(["fleet", "rules", "--config", path, "--pool", "q"])
        #expect(!one.stdout.contains("flowmeter-pool-p") && one.stdout.contains("flowmeter-pool-q"))
        #expect(try run(["fleet", "rules", "--config", path, "--step", "0.5s"]).status != 0)
    }
}
