import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// The dashboard at `/` as a browser sees it: an agent on a veth pair counts
/// known traffic on top of a store holding a known history, Debian's
/// headless Chromium loads the page inside the meter namespace (which has no
/// route anywhere), and the rendered DOM must carry the relay names, the
/// per-category byte counts and the quota's percentage.
@Suite(.serialized, .enabled(if: LiveHarness.canRun && LiveHarness.suiteTool("chromium") != nil,
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

        // A second relay, idle, whose torrc sets AccountingMax: Tor's schedule answers "what is tor doing".
        let torrc = "Nickname exit9\nORPort 127.0.0.1:9101\nAccountingMax 40 GBytes\nAccountingStart month 1 00:00\n"
        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 1",
                                     extraArguments: ["--db", db, "--quota", Self.quotaSpec], torrc: torrc)
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let traffic = TestTraffic.relayHost(rounds: 40)
        let pcap = dir + "/relay-host.pcap"
        try traffic.write(to: pcap)
        try veth.replay(pcap, pps: LiveAgentTests.rate)
        let expected = traffic.expected[.init(relay: "guard1", category: "or_inbound", direction: "in")]!.bytes
        // The counts, and the quotas the agent evaluates off the request path on its store's ticker.
        #expect(LiveHarness.waitUntil(timeout: 40) {
            guard let m = try? agent.metrics() else { return false }
            return m["flowmeter_bytes_total{relay=\"guard1\",category=\"or_inbound\",direction=\"in\"}"] == Double(expected)
                && m.keys.contains { $0.hasPrefix("flowmeter_quota_used_bytes{") && $0.contains("quota=\"provider\"") }
                && m.keys.filter { $0.hasPrefix("flowmeter_quota_used_bytes{") }.count >= 2  // and exit9's AccountingMax
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
        // The three answers, in the DOM the browser built: the host total, the quota's verdict, Tor's state.
        #expect(dom.contains("<section id=\"glance\">") && dom.contains("<tr data-relay=\"all\" class=\"total\">"))
        #expect(dom.contains("<li data-quota=\"provider\" data-verdict=\""), "no verdict for the provider quota")
        #expect(dom.contains("<ul class=\"glance-tor\"><li data-relay=\"exit9\" data-tor-state="), "no Tor state for exit9")
        for (key, value) in traffic.expected where key.relay == "guard1" {
            let cell = Self.cell(dom, relay: key.relay, category: key.category, direction: key.direction)
            #expect(cell == value.bytes, "\(key): DOM shows \(cell.map(String.init) ?? "nothing"), sent \(value.bytes)")
        }
        #expect(dom.contains("<span class=\"quota-percent\">\(expectedPercent)</span>"),
                "quota percentage \(expectedPercent) not in the DOM")
        #expect(dom.contains("<svg"), "no chart rendered")

        // The first screen, as a laptop and a phone show it.
        let browser = try HeadlessChromium(namespace: veth.meter, profile: dir + "/chromium-cdp", log: dir + "/chromium.log")
        defer { browser.close() }
        for (width, height, mobile) in [(1280, 900, false), (390, 844, true)] {
            try browser.open(url, width: width, height: height, mobile: mobile)
            let screen = try FirstScreen.measure(browser)
            for problem in screen.problems(width: width, height: height) { Issue.record("\(width)×\(height): \(problem)") }
        }

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

    /// What a person sees first, measured in the page (CSS pixels, from the document's top).
    struct FirstScreen: Decodable {
        struct Box: Decodable { var top: Double; var bottom: Double; var text: String }
        var scrollWidth: Double
        var clientWidth: Double
        var viewportHeight: Double
        var glance: Box?
        var total: Box?
        var verdicts: [Box]
        var tor: [Box]
        var firstChartTop: Double?
        var charts: [String]

        static let script = """
        JSON.stringify((() => {
          const box = e => { const r = e.getBoundingClientRect(); return {top: r.top + scrollY, bottom: r.bottom + scrollY, text: e.innerText}; };
          const one = s => { const e = document.querySelector(s); return e ? box(e) : null; };
          const chart = document.querySelector('svg.chart');
          return {scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
                  viewportHeight: innerHeight, glance: one('#glance'), total: one('#glance tr.total'),
                  verdicts: [...document.querySelectorAll('#glance .glance-quotas li')].map(box),
                  tor: [...document.querySelectorAll('#glance .glance-tor li')].map(box),
                  firstChartTop: chart ? box(chart).top : null,
                  charts: [...document.querySelectorAll('svg.chart')].map(s => s.outerHTML)};
        })())
        """

        static func measure(_ browser: HeadlessChromium) throws -> FirstScreen {
            let json = try #require(try browser.evaluate(script) as? String)
            return try JSONDecoder().decode(FirstScreen.self, from: Data(json.utf8))
        }

        /// The three answers on the first screen, before any chart, with no sideways scroll.
        func problems(width: Int, height: Int) -> [String] {
            var out: [String] = []
            // A phone's browser widens its layout to overflowing content, so the bound is the screen's width.
            if scrollWidth > min(clientWidth, Double(width)) { out.append("scrolls sideways: \(scrollWidth) px of content on a \(width) px screen") }
            guard let glance, let total else { return out + ["no glance section with a host-total row"] }
            if !total.text.hasPrefix("total\t") || !total.text.contains("B") { out.append("host total row reads '\(total.text)'") }
            if verdicts.isEmpty { out.append("no quota verdict") }
            for v in verdicts where !["lasts", "may run out", "runs out on ", "over the limit", "no verdict yet"].contains(where: { v.text.contains(": " + $0) }) {
                out.append("quota line without a verdict: '\(v.text)'")
            }
            if tor.isEmpty { out.append("no Tor answer") }
            for answer in [total] + verdicts + tor where answer.bottom > viewportHeight {
                out.append("'\(answer.text.prefix(40))' ends at \(answer.bottom) px, below the first screen (\(viewportHeight) px)")
            }
            if let chartTop = firstChartTop, chartTop < glance.bottom { out.append("a chart (at \(chartTop) px) comes before the answers end (\(glance.bottom) px)") }
            for c in charts.flatMap({ ChartTicks.charts(in: $0) }) { out += ChartTicks.problems(c) }
            return out
        }
    }

    /// The `data-bytes` of a relay's category cell in the rendered DOM.
    static func cell(_ dom: String, relay: String, category: String, direction: String) -> UInt64? {
        guard let section = dom.range(of: "<section class=\"relay\" data-relay=\"\(relay)\"") else { return nil }
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
