import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterExport

/// What `flowmeter top` reads, from something at `--agent` that need not be
/// FlowMeter's agent: one deadline per refresh, a bound on the answer, and a
/// screen with nothing a terminal would execute.
@Suite struct AgentStatusClientTests {
    @Test func aDrippedAnswerIsGivenUpAtTheDeadline() throws {
        let agent = try FakeHTTPAgent(answer: FakeHTTPAgent.ok(StatusDocuments.status()), drip: 0.05)
        defer { agent.stop() }
        var client = try #require(AgentStatusClient(agent: "127.0.0.1:\(agent.port)", token: nil))
        client.deadline = .seconds(1)
        let started = Date()
        #expect(throws: AgentStatusClient.Failure.self) { _ = try client.get("/api/v1/status") }
        do { _ = try client.get("/api/v1/status") } catch { #expect(error.description.contains("no complete answer within 1 s"), "\(error)") }
        #expect(Date().timeIntervalSince(started) < 3.5)
    }

    @Test func anAnswerOverTheBoundIsRefusedWithoutReadingTheRest() throws {
        let agent = try FakeHTTPAgent(answer: FakeHTTPAgent.ok(StatusDocuments.status(rows: 300_000)))
        defer { agent.stop() }
        let client = try #require(AgentStatusClient(agent: "127.0.0.1:\(agent.port)", token: nil))
        let started = Date()
        do { _ = try client.get("/api/v1/status"); Issue.record("a 300,000-row answer was read") } catch {
            #expect(error.description.contains("over 4 MiB"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 3)
    }

    @Test func somethingThatIsNotHTTPIsAClearFailureNotAHang() throws {
        let agent = try FakeHTTPAgent(answer: Array("SSH-2.0-OpenSSH_9.2\r\n\r\n".utf8))
        defer { agent.stop() }
        var client = try #require(AgentStatusClient(agent: "127.0.0.1:\(agent.port)", token: nil))
        client.deadline = .seconds(2)
        let started = Date()
        #expect(throws: AgentStatusClient.Failure.self) { _ = try client.get("/api/v1/status") }
        #expect(Date().timeIntervalSince(started) < 4)
    }

    @Test func agentAddressesAreHostAndPortOrNothing() {
        #expect(AgentStatusClient(agent: "127.0.0.1:9477", token: nil)?.port == 9477)
        #expect(AgentStatusClient(agent: "[::1]:9477", token: nil)?.host == "::1")
        for bad in ["127.0.0.1", ":9477", "127.0.0.1:0", "127.0.0.1:70000", "a/b:1"] { #expect(AgentStatusClient(agent: bad, token: nil) == nil, "\(bad)") }
    }

    @Test func theScreenCarriesNoControlCharacterFromTheDocument() throws {
        let status = try TopView.Status.decode(Data(StatusDocuments.status(name: StatusDocuments.hostile).utf8))
        let lines = TopView.lines(status, previous: status, agent: "127.0.0.1:9477\u{1B}[2J", width: 80)
        let screen = lines.joined(separator: "\n")
        for scalar in screen.unicodeScalars where scalar != "\n" {
            #expect(scalar.value >= 0x20 && scalar.value != 0x7F && !(0x80...0x9F).contains(scalar.value) && scalar != "\u{202E}",
                    "U+\(String(scalar.value, radix: 16)) on the screen:\n\(screen)")
        }
        #expect(screen.contains("evil]0;owned]52;c;cm0gLXJmIH4=[2J31mname"), "\(screen)")
        #expect(lines.allSatisfy { $0.count <= 80 })
    }

    @Test func aHugeDocumentIsDrawnInLinearTimeAndSaysWhatItLeftOut() throws {
        let status = try TopView.Status.decode(Data(StatusDocuments.status(rows: 40_000).utf8))
        let started = Date()
        let lines = TopView.lines(status, previous: status, agent: "a:1", width: 80)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(lines.contains { $0.contains("… and 39800 more relay/category rows not shown") }, "\(lines.suffix(5))")
    }

    @Test func printableDropsControlAndFormatCharactersAndKeepsTheRest() {
        #expect(Format.printable("a\u{1B}[31mb\u{07}c\u{9B}d\u{7F}e\u{200F}f\tg\nh") == "a[31mbcdefgh")
        #expect(Format.printable("Größe 中文 ✓") == "Größe 中文 ✓")
        #expect(Format.printable("abcdef", limit: 4) == "abc…")
    }
}
