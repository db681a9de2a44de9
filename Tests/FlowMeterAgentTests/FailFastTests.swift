import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// What the operator typed is checked before the agent runs: the built
/// binary is started with a bad value and must stop at once, with the exit
/// status docs/agent.md promises and the cause in words. Every run uses a
/// temporary --system-root, so the host's /etc/tor and /var/lib are never read.
@Suite(.serialized) final class FailFastTests {
    let root = makeTemporaryDirectory("failfast")
    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// A loopback port nothing listens on now.
    static func freePort() -> Int { 20_000 + Int(getpid() % 20_000) + Int.random(in: 0..<5_000) }

    func run(_ arguments: [String], wrapper: [String] = [], timeout: Double = 30) throws -> ProcessResult {
        let argv = ["run", "--system-root", root] + arguments
        if wrapper.isEmpty { return try runProcess(Repo.flowmeterBinary, argv, timeout: timeout) }
        return try runProcess(wrapper[0], Array(wrapper.dropFirst()) + [Repo.flowmeterBinary] + argv, timeout: timeout)
    }

    @Test func anInterfaceThatDoesNotExistExitsOneListingThoseThatDo() throws {
        let r = try run(["-i", "fmtypo0", "--no-db", "--listen", "127.0.0.1:\(Self.freePort())"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("flowmeter: error: no such interface: fmtypo0; this host has "))
        #expect(r.stderr.contains("lo"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs setpriv (util-linux) to drop CAP_NET_RAW"))
    func withoutCapNetRawItExitsOneNamingTheCapability() throws {
        let r = try run(["-i", "lo", "--no-db", "--listen", "127.0.0.1:\(Self.freePort())"],
                        wrapper: ["/usr/bin/setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("CAP_NET_RAW"))
    }

    @Test func aBPFFilterThatDoesNotCompileExitsTwoWithFileAndLine() throws {
        let config = root + "/bad-filter.yaml"
        try "agent:\n  snaplen: 128\n  bpf_filter: \"tcp port\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let r = try run(["-i", "lo", "--no-db", "--config", config])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("\(config):3: agent.bpf_filter: \"tcp port\" does not compile"))
    }

    @Test func aBadListenExitsTwo() throws {
        let r = try run(["-i", "lo", "--no-db", "--listen", "127.0.0.1:99999"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("--listen: 127.0.0.1:99999: expected ADDRESS:PORT"))
    }

    @Test func aTakenListenAddressIsNamedWithTheCauseInWords() throws {
        let taken = try LoopbackListener { _, _ in }
        defer { taken.stop() }
        let port = Int(taken.port)
        let r = try run(["-i", "lo", "--no-db", "--listen", "127.0.0.1:\(port)"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("127.0.0.1:\(port): address already in use"), "\(r.stderr)")
        #expect(!r.stderr.contains("errno"))
    }

    @Test func aStoreThatCannotBeOpenedAtStartExitsOneWithTheReason() throws {
        let db = root + "/no-such-directory/accounting.db"
        let r = try run(["-i", "lo", "--db", db, "--listen", "127.0.0.1:\(Self.freePort())"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("accounting store \(db):"), "\(r.stderr)")
        #expect(r.stderr.contains("--no-db"))
        #expect(!r.stderr.contains("serving"), "a start that fails must not look like one that worked")
    }

    /// With no --db the agent keeps history in the state directory, which
    /// it makes when missing (systemd makes it for the unit).
    @Test func withoutFlagsHistoryIsKeptInTheStateDirectory() throws {
        let r = try run(["-i", "lo", "--listen", "127.0.0.1:\(Self.freePort())"], timeout: 6)
        let db = root + "/var/lib/flowmeter/accounting.db"
        #expect(FileManager.default.fileExists(atPath: db), "agent stderr:\n\(r.stderr)")
        #expect(r.stderr.contains("storing history in \(db)"))
    }

    @Test func logLinesHaveOneFormatAndPrioritiesUnderJournald() {
        #expect(FlowMeterLogHandler.line(.error, "x: y", journald: false) == "flowmeter: error: x: y\n")
        #expect(FlowMeterLogHandler.line(.warning, "w", journald: true) == "<4>flowmeter: warning: w\n")
        #expect(FlowMeterLogHandler.line(.info, "a\nb", journald: true) == "<6>flowmeter: info: a\n<6>flowmeter: info: b\n")
        #expect(errnoDescription(EADDRINUSE) == "address already in use")
    }
}
