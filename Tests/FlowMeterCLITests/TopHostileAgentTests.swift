import Foundation
import Testing
@testable import FlowMeterTestSupport

/// `flowmeter top`, the binary, against something at `--agent` that is not
/// FlowMeter's agent: an answer dripped one byte per 50 ms, one of 300,000
/// rows, and names carrying terminal escape sequences. It gives up on a
/// refresh within seconds, saying why, and prints nothing a terminal executes.
@Suite struct TopHostileAgentTests {
    func top(_ agent: FakeHTTPAgent) throws -> (result: ProcessResult, seconds: Double) {
        let started = Date()
        let r = try runProcess(Repo.flowmeterBinary, ["top", "--agent", "127.0.0.1:\(agent.port)", "--count", "1"], timeout: 30)
        return (r, Date().timeIntervalSince(started))
    }

    @Test func aDrippedAnswerEndsTheRefreshWithinSecondsAndSaysWhy() throws {
        let agent = try FakeHTTPAgent(answer: FakeHTTPAgent.ok(StatusDocuments.status()), drip: 0.05)
        defer { agent.stop() }
        let (r, seconds) = try top(agent)
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("no complete answer within 5 s"), "\(r.stderr)")
        #expect(seconds < 8, "top waited \(seconds) s")
    }

    @Test func a300000RowStatusIsRefusedWithinSeconds() throws {
        let agent = try FakeHTTPAgent(answer: FakeHTTPAgent.ok(StatusDocuments.status(rows: 300_000)))
        defer { agent.stop() }
        let (r, seconds) = try top(agent)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("over 4 MiB"), "\(r.stderr)")
        #expect(seconds < 8, "top waited \(seconds) s")
    }

    @Test func escapeSequencesInNamesNeverReachTheTerminal() throws {
        let agent = try FakeHTTPAgent(answer: FakeHTTPAgent.ok(StatusDocuments.status(name: StatusDocuments.hostile)))
        defer { agent.stop() }
        let (r, _) = try top(agent)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("evil]0;owned"), "\(r.stdout)")
        let bad = r.stdout.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7F || (0x80...0x9F).contains($0.value) }
        #expect(bad.isEmpty, "control characters on stdout: \(bad.map { String($0.value, radix: 16) })")
    }

    @Test func aRefusalsBodyIsShownPrintable() throws {
        let body = "go away\u{1B}]52;c;cm0gLXJm\u{07}"
        let answer = Array("HTTP/1.1 403 Forbidden\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        let agent = try FakeHTTPAgent(answer: answer)
        defer { agent.stop() }
        let (r, _) = try top(agent)
        #expect(r.status == 1 && r.stderr.contains("HTTP 403: go away]52;c;cm0gLXJm"), "\(r.stderr)")
        #expect(!r.stderr.contains("\u{1B}") && !r.stderr.contains("\u{07}"), "\(r.stderr.debugDescription)")
    }
}
