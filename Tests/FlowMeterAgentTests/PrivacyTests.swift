import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// The README's privacy promise as a test: no peer address, no peer port and
/// no per-flow record in anything FlowMeter stores, exports or logs. The agent
/// counts traffic from peers with addresses and ports chosen for this test
/// (over a veth pair, logging at `trace`, reloaded once), then every file it
/// wrote, every answer of its endpoint and every offline view of its store is
/// searched for those peers: as text (dotted IPv4, IPv6 compressed and
/// expanded) and, in files, as the raw 4 or 16 bytes a record would hold.
@Suite(.serialized, .enabled(if: LiveHarness.canRun, Comment(rawValue: LiveHarness.skipReason)))
struct PrivacyTests {
    static let client = TestTraffic.ip(203, 0, 113, 177)
    static let destination = TestTraffic.ip(203, 0, 113, 211)
    static let resolver = TestTraffic.ip(203, 0, 113, 199)
    static let client6 = TestTraffic.ip6(0xA7)
    static let addresses = [client, destination, resolver, client6]
    /// Peer ports and the relay's own ephemeral ones: each half of a port pair.
    static let ports: [UInt16] = [47613, 52891, 38117, 41729]

    /// Every kind of packet whose handling could mention its peer: a
    /// handshake and data on the ORPort, exit traffic, a DNS answer in
    /// fragments, IPv6, and a packet too malformed to decode.
    static func traffic() -> TestTraffic {
        var t = TestTraffic()
        let relay = TestTraffic.ip(198, 51, 100, 10), relay6 = TestTraffic.ip6(0x10)
        let key = TestTraffic.Key(relay: "guard1", category: "any", direction: "any")
        for round in 0..<5 {
            t.add(TestTraffic.tcp(client, 47613, relay, 9001, payload: 0, flags: 0x02), key)
            t.add(TestTraffic.tcp(relay, 9001, client, 47613, payload: 0, flags: 0x12), key)
            t.add(TestTraffic.tcp(client, 47613, relay, 9001, payload: 300 + round), key)
            t.add(TestTraffic.tcp(relay, 52891, destination, 443, payload: 200), key)
            t.add(TestTraffic.tcp(destination, 443, relay, 52891, payload: 1200), key)
            t.add(TestTraffic.udp(relay, 38117, resolver, 53, payload: 40), key)
            for f in TestTraffic.udpFragments(resolver, 53, relay, 38117, payload: 3000, id: UInt16(0x4100 + round)) {
                t.add(f, key)
            }
            t.add(TestTraffic.udp6(client6, 41729, relay6, 9001, payload: 100), key)
            var bad = TestTraffic.tcp(client, 47613, relay, 9001, payload: 10)
            bad[14] = 0x44  // IHL 4: shorter than the fixed header
            t.addUndecoded(bad, "ipv4_header_length_invalid")
        }
        return t
    }

    @Test func nothingTheAgentStoresExportsOrLogsNamesAPeerAddressOrAPeerPort() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let state = try LiveHarness.temporaryDirectory()
        let outside = try LiveHarness.temporaryDirectory()
        defer { for d in [state, outside] { try? FileManager.default.removeItem(atPath: d) } }
        let db = state + "/acct.db"
        let agent = try RunningAgent(veth: veth, state: state, db: db, extraArguments: ["--log-level", "trace"])
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let traffic = Self.traffic()
        let pcap = outside + "/peers.pcap"  // the test's own capture holds the peers, so it lives elsewhere
        try traffic.write(to: pcap)
        let scan = PeerScan(addresses: Self.addresses, ports: Self.ports)
        #expect(scan.findings(inFile: pcap).count >= Self.addresses.count, "the search finds peers where they are")

        try veth.replay(pcap, pps: 500)
        #expect(try LiveHarness.waitUntil(timeout: 15) {
            UInt64(LiveAgentTests.counted(try agent.metrics())) >= traffic.packetCount
        }, "agent log:\n\(agent.process.log)")
        kill(agent.process.pid, SIGHUP)
        #expect(try LiveHarness.waitUntil(timeout: 10) {
            try agent.metrics()["flowmeter_config_reloads_total{result=\"success\"}"] == 1
        })
        var findings: [String] = []
        for path in ["/metrics", "/api/v1/status", "/"] {
            let (code, body) = try veth.get("http://127.0.0.1:9477\(path)", in: veth.meter)
            #expect(code == 200, "\(path)")
            findings += scan.findings(inText: body, source: path)
        }
        #expect(agent.process.stop(signal: SIGTERM, timeout: 10) == 0)

        let views: [[String]] = [
            ["report", "--db", db], ["forecast", "--db", db, "--json", "--quota", RunningAgent.dailyQuota],
            ["check", "--db", db, "--quota", RunningAgent.dailyQuota],
            ["db", "export", "--db", db], ["db", "check", "--db", db], ["db", "audit"],
            ["replay", pcap, "--json", "--config", agent.directory + "/flowmeter.yaml", "--db", outside + "/replay.db"],
        ]
        for argv in views {
            let r = try LiveHarness.run([LiveHarness.flowmeter] + argv)
            findings += scan.findings(inText: r.stdout + r.stderr, source: "flowmeter " + argv.prefix(2).joined(separator: " "))
        }
        let written = try [state, agent.directory].flatMap(Self.files) + [outside + "/replay.db"]
        #expect(written.contains(db) && written.contains(agent.directory + "/agent.log"), "\(written)")
        for file in written { findings += scan.findings(inFile: file) }
        #expect(findings.isEmpty, "\(findings.joined(separator: "\n"))")
        #expect(agent.process.log.contains(": debug: "), "the log ran below info level")
    }

    /// Every regular file under `directory`.
    static func files(_ directory: String) throws -> [String] {
        let e = FileManager.default.enumerator(atPath: directory)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + p, isDirectory: &isDirectory), !isDirectory.boolValue {
                out.append(directory + "/" + p)
            }
        }
        return out
    }

    @Test func theSearchFindsAPeerInEveryFormItLooksFor() {
        let scan = PeerScan(addresses: Self.addresses, ports: Self.ports)
        for line in ["peer 203.0.113.177.", "to [2001:db8::a7]:9001", "2001:0db8:0000:0000:0000:0000:0000:00a7", "port=47613;"] {
            #expect(scan.findings(inText: line, source: "t").count == 1, "\(line)")
        }
        #expect(scan.findings(inText: "bytes 1476130 at 203.0.113.17 and 2001:db8::a70", source: "t").isEmpty)
    }
}

/// Searches text and files for the peers' addresses and ports.
struct PeerScan {
    let texts: [String]
    let ports: [String]
    let binaries: [Data]

    init(addresses: [[UInt8]], ports: [UInt16]) {
        var texts: [String] = []
        for a in addresses {
            if a.count == 4 {
                texts.append(a.map(String.init).joined(separator: "."))
            } else {
                let groups = stride(from: 0, to: 16, by: 2).map { UInt16(a[$0]) << 8 | UInt16(a[$0 + 1]) }
                texts.append(groups.map { String(format: "%04x", $0) }.joined(separator: ":"))
                texts.append(IPv6Text.compressed(groups))
            }
        }
        self.texts = texts
        self.ports = ports.map(String.init)
        binaries = addresses.map { Data($0) }
    }

    /// Each address (not inside a longer hex word) or port (not inside a
    /// longer number) that appears in `text`.
    func findings(inText text: String, source: String) -> [String] {
        let addresses = texts.filter { Self.contains($0, in: text) { $0.isHexDigit || $0.isLetter } }
        let ports = ports.filter { Self.contains($0, in: text) { $0.isNumber } }
        return (addresses + ports).map { "\(source): \($0)" }
    }

    /// The same in a file's text, and each address's raw bytes in its contents.
    func findings(inFile path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return ["\(path): unreadable"] }
        let text = String(decoding: data, as: UTF8.self)
        return findings(inText: text, source: path)
            + binaries.enumerated().filter { data.range(of: $0.element) != nil }.map { "\(path): address \($0.offset) as bytes" }
    }

    /// Whether `token` occurs in `text` with no `continues` character next to it.
    static func contains(_ token: String, in text: String, continues: (Character) -> Bool) -> Bool {
        var from = text.startIndex
        while let r = text.range(of: token, options: [.caseInsensitive], range: from..<text.endIndex) {
            let before = r.lowerBound == text.startIndex ? nil : text[text.index(before: r.lowerBound)]
            let after = r.upperBound == text.endIndex ? nil : text[r.upperBound]
            if !(before.map(continues) ?? false) && !(after.map(continues) ?? false) { return true }
            from = r.upperBound
        }
        return false
    }
}

/// RFC 5952 text of an IPv6 address's eight groups (the longest run of two
/// or more zero groups as "::").
enum IPv6Text {
    static func compressed(_ g: [UInt16]) -> String {
        var best = (start: -1, length: 0), i = 0
        while i < 8 {
            var j = i
            while j < 8 && g[j] == 0 { j += 1 }
            if j - i > best.length && j - i >= 2 { best = (i, j - i) }
            i = j == i ? i + 1 : j
        }
        let hex = g.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        return hex[..<best.start].joined(separator: ":") + "::" + hex[(best.start + best.length)...].joined(separator: ":")
    }
}
