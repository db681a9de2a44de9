import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// The dashboard at `/` as a browser sees it: an agent on a veth pair counts
/// known traffic on top of a store holding a known history, Debian's
/// headless Chromium loads the page inside the meter namespace (which has no
/// route anywhere), and the rendered DOM must carry the relay names, the
/// per-category byte counts and the quota's percentage.
@Suite(.serialized, .enabled(if: LiveHarness.canRun && LiveHarness.tool("chromium") != nil,
                             "needs root, ip netns, tcpreplay, curl and Debian's chromium package"))
struct DashboardTests {
    static let quotaSpec = KnownHistory.quotaSpec

    @Test func headlessChromiumRendersTheRelaysCategoriesAndQuotaFromTheAgentAndItsStore() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/accounting.db"
        let now = Date()
        try KnownHistory.write(db, until: now.addingTimeInterval(-120))
        let quota = try Quota(spec: Self.quotaSpec, defaultZone: TimeZone(identifier: "UTC")!)
        let history = try QuotaUsage.measure(quota, source: AccountingReader(path: db), now: now)
        let expectedPercent = String(format: "%.1f %%", history.fractionUsed * 100)

        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 1",
                                     extraArguments: ["--db", db, "--quota", Self.quotaSpec])
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let traffic = TestTraffic.relayHost(rounds: 40)
        let pcap = dir + "/relay-host.pcap"
        try traffic.write(to: pcap)
        try veth.replay(pcap, pps: LiveAgentTests.rate)
        let expected = traffic.expected[.init(relay: "guard1", category: "or_inbound", direction: "in")]!.bytes
        #expect(LiveHarness.waitUntil(timeout: 20) {
            (try? agent.metrics())?["flowmeter_bytes_total{relay=\"guard1\",category=\"or_inbound\",direction=\"in\"}"] == Double(expected)
        })

        let url = "http://127.0.0.1:\(agent.port)/"
        let (code, html) = try veth.get(url, in: veth.meter)
        #expect(code == 200)
        // Nothing to fetch from anywhere: the only URL is the SVG namespace name, and no element loads a resource.
        let urls = html.components(separatedBy: "://").count - 1
        let namespaces = html.components(separatedBy: "http://www.w3.org/2000/svg").count - 1
        #expect(urls == namespaces, "the page names a URL other than the SVG namespace")
        for attribute in [" src=", " href=", "@import", "url("] { #expect(!html.contains(attribute), "the page has \(attribute)") }

        // Every host name resolves to nothing but the loopback address: the page must still render whole.
        let dom = try chromium(["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--dump-dom", url], veth: veth, dir: dir)
        for relay in ["guard1", "host"] {
            #expect(dom.contains("<h2 class=\"relay-name\">\(relay)</h2>"), "relay \(relay) missing from the DOM")
        }
        for (key, value) in traffic.expected where key.relay == "guard1" {
            let cell = Self.cell(dom, relay: key.relay, category: key.category, direction: key.direction)
            #expect(cell == value.bytes, "\(key): DOM shows \(cell.map(String.init) ?? "nothing"), sent \(value.bytes)")
        }
        #expect(dom.contains("<span class=\"quota-percent\">\(expectedPercent)</span>"),
                "quota percentage \(expectedPercent) not in the DOM")
        #expect(dom.contains("<svg"), "no chart rendered")

        let shot = dir + "/dashboard.png"
        _ = try chromium(["--window-size=900,1700", "--screenshot=\(shot)", url], veth: veth, dir: dir)
        let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? NSNumber)?.intValue ?? 0
        #expect(size > 10_000, "no screenshot written")
        if let keep = ProcessInfo.processInfo.environment["FLOWMETER_DASHBOARD_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: shot, toPath: keep)
            // A phone's width too, to look at (not asserted).
            _ = try chromium(["--window-size=390,1400", "--screenshot=\(keep).phone.png", url], veth: veth, dir: dir)
        }
    }

    /// The `data-bytes` of a relay's category cell in the rendered DOM.
    static func cell(_ dom: String, relay: String, category: String, direction: String) -> UInt64? {
        guard let section = dom.range(of: "data-relay=\"\(relay)\"") else { return nil }
        let rest = dom[section.upperBound...]
        let body = rest.range(of: "</section>").map { rest[..<$0.lowerBound] } ?? rest
        guard let row = body.range(of: "<tr data-category=\"\(category)\">") else { return nil }
        let tail = body[row.upperBound...]
        guard let td = tail.range(of: "class=\"bytes-\(direction)\" data-bytes=\"") else { return nil }
        return UInt64(tail[td.upperBound...].prefix { $0.isNumber })
    }

    /// Headless Chromium inside the meter namespace, with its own profile.
    private func chromium(_ args: [String], veth: VethPair, dir: String) throws -> String {
        let out = try LiveHarness.run(["ip", "netns", "exec", veth.meter, LiveHarness.tool("chromium")!,
                                       "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                                       "--user-data-dir=\(dir)/chromium", "--virtual-time-budget=3000"] + args, timeout: 45)
        #expect(out.status == 0, "chromium: \(out.stderr.suffix(1500))")
        return out.stdout
    }
}
