import Foundation
import Testing
@testable import FlowMeterTestSupport

/// `flowmeter top` against a real agent on a veth pair that counted known
/// traffic: in a tmux pane (a real terminal, 80×24) the screen opens with the
/// three answers, shows the relay and category figures, answers h, s and r,
/// and `q` ends it with status 0; with standard output not a terminal it
/// prints plain lines.
@Suite(.serialized, .enabled(if: LiveHarness.canRun && LiveHarness.suiteTool("tmux") != nil,
                             "needs root, ip netns, tcpreplay, curl and tmux"))
struct TopCommandTests {
    @Test func topInTmuxShowsTheRelayAndCategoryFiguresAndQExitsZero() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "top-token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        let db = dir + "/accounting.db"
        try KnownHistory.write(db, until: Date().addingTimeInterval(-120))
        let quota = try Quota(spec: KnownHistory.quotaSpec, defaultZone: TimeZone(identifier: "UTC")!)
        let used = try QuotaUsage.measure(quota, source: AccountingReader(path: db), now: Date())
        let agent = try RunningAgent(veth: veth, agentYAML: "bearer_token_file: \(dir)/token\ncapture_threads: 1",
                                     extraArguments: ["--db", db, "--quota", KnownHistory.quotaSpec])
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(headers: ["Authorization: Bearer top-token"]), "agent log:\n\(agent.process.log)")
        let traffic = TestTraffic.relayHost(rounds: 40)
        try traffic.write(to: dir + "/t.pcap")
        try veth.replay(dir + "/t.pcap", pps: 2000)
        let inBytes = traffic.expected[.init(relay: "guard1", category: "or_inbound", direction: "in")]!.bytes
        let outBytes = traffic.expected[.init(relay: "guard1", category: "or_inbound", direction: "out")]!.bytes
        #expect(LiveHarness.waitUntil(timeout: 20) {
            (try? agent.metrics(headers: ["Authorization: Bearer top-token"]))?[
                "flowmeter_bytes_total{relay=\"guard1\",category=\"or_inbound\",direction=\"in\"}"] == Double(inBytes)
        })

        let socket = dir + "/tmux.sock"  // removed with the directory
        let command = "\(LiveHarness.flowmeter) top --agent 127.0.0.1:\(agent.port) --token-file \(dir)/token"
        // Through python3's subprocess, which closes every inherited descriptor
        // but 0-2: the tmux server outlives its client, and a descriptor it kept
        // from Foundation's Process would make the client look alive forever.
        let started = try LiveHarness.run(["ip", "netns", "exec", veth.meter, "python3", "-c",
                                           "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)",
                                           "tmux", "-S", socket, "-f", "/dev/null",
                                           "new-session", "-d", "-s", "top", "-x", "80", "-y", "24", command,
                                           ";", "set-option", "-t", "top", "remain-on-exit", "on"], timeout: 15)
        #expect(started.status == 0, "tmux: \(started.stderr)")
        let server = try LiveHarness.run(["tmux", "-S", socket, "display-message", "-p", "-t", "top", "#{pid}"])
        let serverPID = Int32(server.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        defer {
            // The tmux server this test started, by its PID.
            if let serverPID { kill(serverPID, SIGKILL) }
        }
        let figure = SVG.bytes(Double(inBytes)), outFigure = SVG.bytes(Double(outBytes))
        var screen = ""
        // The agent evaluates its quotas and reads its store off the request path: they come within seconds.
        let shown = try LiveHarness.waitUntil(timeout: 40) {
            screen = try LiveHarness.run(["tmux", "-S", socket, "capture-pane", "-p", "-t", "top"]).stdout
            return screen.contains(" B/s") && screen.contains(figure) && screen.contains("quota provider: ")
                && screen.contains("\nguard1   ")
        }
        #expect(shown, "screen:\n\(screen)")
        let line = screen.split(separator: "\n").first { $0.hasPrefix("guard1") && $0.contains("or_inbound") } ?? ""
        #expect(line.hasSuffix(outFigure), "or_inbound line: \(line)")
        #expect(screen.contains("host") && screen.contains("dns"), "screen:\n\(screen)")
        let percent = String(format: "%.1f", used.fractionUsed * 100)
        #expect(screen.contains("quota provider: ") && screen.contains("\(percent) % used") && screen.contains("projected"),
                "screen:\n\(screen)")
        #expect(screen.contains("connections guard1: "), "screen:\n\(screen)")
        let rows = screen.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(rows.first?.hasPrefix("flowmeter top  127.0.0.1:") == true, "the title scrolled away:\n\(screen)")
        #expect(rows.contains { $0.hasPrefix("total ") } && rows.contains { $0.hasPrefix("Tor: ") }, "screen:\n\(screen)")
        #expect(rows.allSatisfy { $0.count <= 80 }, "a line is wider than 80 columns:\n\(screen)")
        // h shows the help, any key returns, s sorts, r shows one relay.
        func after(_ key: String, shows words: String) throws -> Bool {
            _ = try LiveHarness.run(["tmux", "-S", socket, "send-keys", "-t", "top", key])
            return try LiveHarness.waitUntil(timeout: 5) {
                screen = try LiveHarness.run(["tmux", "-S", socket, "capture-pane", "-p", "-t", "top"]).stdout
                return screen.contains(words)
            }
        }
        #expect(try after("h", shows: "keys and symbols"), "screen:\n\(screen)")
        #expect(try after("x", shows: "h help"), "screen:\n\(screen)")
        #expect(try after("s", shows: "sort: in/s"), "screen:\n\(screen)")
        #expect(try after("r", shows: "relay: g") || screen.contains("relay: host"), "screen:\n\(screen)")

        _ = try LiveHarness.run(["tmux", "-S", socket, "send-keys", "-t", "top", "q"])
        var status = ""
        // tmux marks the pane dead at the pty's end of file and fills in the
        // exit status when its SIGCHLD handler reaps the child. Debian's tmux
        // runs libutempter's helper at that same moment, with libutempter's
        // own SIGCHLD handler in place, so the pane's SIGCHLD can be lost and
        // the child stays a zombie (tmux/tmux#311; seen here: a zombie for 30 s,
        // reaped with status 0 by one more SIGCHLD). So while the pane is dead
        // without a status, nudge the server this test started, by its PID.
        let exited = try LiveHarness.waitUntil(timeout: 30) {
            status = try LiveHarness.run(["tmux", "-S", socket, "display-message", "-p", "-t", "top",
                                          "#{pane_dead} #{pane_dead_status}#{?pane_dead_signal, signal #{pane_dead_signal},}"])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if status == "1", let serverPID { kill(serverPID, SIGCHLD) }
            return status.hasPrefix("1 ")
        }
        #expect(exited && status == "1 0", "pane after q: '\(status)'")

        // Not a terminal: plain lines, no escape sequences, --count refreshes.
        let plain = try LiveHarness.run(["ip", "netns", "exec", veth.meter, LiveHarness.flowmeter, "top", "--agent",
                                         "127.0.0.1:\(agent.port)", "--token-file", dir + "/token", "--count", "2"], timeout: 20)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(!plain.stdout.contains("\u{1B}") && plain.stdout.contains(figure), "\(plain.stdout)")
        // Without the token the agent refuses and top says why.
        let refused = try LiveHarness.run(["ip", "netns", "exec", veth.meter, LiveHarness.flowmeter, "top", "--agent",
                                           "127.0.0.1:\(agent.port)", "--count", "1"], timeout: 20)
        #expect(refused.status == 1 && refused.stderr.contains("token"), "\(refused.stderr)")
    }
}
