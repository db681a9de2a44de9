import FlowMeterAccounting
import FlowMeterCore
import FlowMeterReports
import Foundation
import Testing
@testable import FlowMeterFleet
@testable import FlowMeterTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A pool read from a real central store, VictoriaMetrics and Prometheus
/// alike, over their HTTP query API: 26 h of two hosts' counters sampled
/// each minute, with a two-hour hole in host a's samples (its counters go on)
/// and host b's agent restarting (its counters start again from zero). The
/// pool's use and each host's part must be exactly the counters' own
/// increments since the period's start (10:30-ish UTC, off the hour).
@Suite(.serialized)
struct CentralStoreTests {
    /// One scripted fleet: samples per series, and the increments they hold.
    struct Scenario {
        let t0: Double
        let evaluation: Double
        let periodStart: Double
        var series: [(labels: [String: String], samples: [PromSample])] = []

        init() {
            t0 = (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 30 * 3600
            evaluation = t0 + 26 * 3600 + 17 * 60
            periodStart = t0 + 14 * 3600 + 30 * 60
            // host, agent start, end of a hole in samples, restart, rates in/out
            add(host: "a", start: t0 + 300, hole: (t0 + 10 * 3600 + 300, t0 + 12 * 3600 + 600), restart: nil, rates: (1000, 500))
            add(host: "b", start: t0 + 2 * 3600 + 1200, hole: nil, restart: t0 + 20 * 3600 + 2400, rates: (2000, 100))
            // c's vmagent stopped sending two hours ago.
            add(host: "c", start: t0 + 60, hole: nil, restart: nil, rates: (300, 300), until: evaluation - 7200)
        }

        mutating func add(host: String, start: Double, hole: (Double, Double)?, restart: Double?, rates: (Double, Double),
                          until end: Double? = nil) {
            var times: [Double] = []
            var t = start + 30
            while t <= (end ?? evaluation) { if hole.map({ t < $0.0 || t > $0.1 }) ?? true { times.append(t) }; t += 60 }
            func since(_ t: Double) -> (Double, Double) {  // (counter origin, agent start) at t
                if let r = restart, t >= r { return (r, r) }
                return (start, start)
            }
            for (dir, rate) in [("in", rates.0), ("out", rates.1)] {
                series.append((["__name__": "flowmeter_bytes_total", "host": host, "relay": "r1", "category": "or_inbound",
                                "direction": dir, "job": "flowmeter", "instance": "127.0.0.1:9477"],
                               times.map { PromSample($0, (rate * ($0 - since($0).0)).rounded()) }))
            }
            series.append((["__name__": "flowmeter_build_info", "host": host, "version": "test"], times.map { PromSample($0, 1) }))
            series.append((["__name__": "flowmeter_start_time_seconds", "host": host], times.map { PromSample($0, since($0).1) }))
        }

        /// The exact increase since `periodStart` of one host's counters in one direction.
        func used(_ host: String, _ direction: String) -> UInt64 {
            series.filter { $0.labels["host"] == host && $0.labels["direction"] == direction }.reduce(0) { sum, s in
                let base = s.samples.last { $0.time <= periodStart }?.value
                return sum + CounterReadings.increase(s.samples, after: periodStart, base: base)
            }
        }

        func pool(_ hosts: String = "a,b") -> PooledQuota {
            let hm = Date(timeIntervalSince1970: periodStart)
            var c = Calendar(identifier: .gregorian)
            c.timeZone = TimeZone(identifier: "UTC")!
            let spec = String(format: "pool 1TB-SI day %02d:%02d sum provider tz=UTC hosts=%@", c.component(.hour, from: hm),
                              c.component(.minute, from: hm), hosts)
            return try! PooledQuota(spec: spec, defaultZone: .current)
        }

        var vmImport: String {
            series.map { s in
                let metric = s.labels.map { "\(PromQL.string($0.key)):\(PromQL.string($0.value))" }.joined(separator: ",")
                return "{\"metric\":{\(metric)},\"values\":[\(s.samples.map { String(Int64($0.value)) }.joined(separator: ","))],"
                    + "\"timestamps\":[\(s.samples.map { String(Int64($0.time * 1000)) }.joined(separator: ","))]}"
            }.joined(separator: "\n") + "\n"
        }

        var openMetrics: String {
            var out = ""
            for s in series {
                let labels = s.labels.filter { $0.key != "__name__" }.sorted { $0.key < $1.key }
                    .map { "\($0.key)=\(PromQL.string($0.value))" }.joined(separator: ",")
                for p in s.samples { out += "\(s.labels["__name__"]!){\(labels)} \(Int64(p.value)) \(Int64(p.time))\n" }
            }
            return out + "# EOF\n"
        }
    }

    func check(_ api: PrometheusQuerying, _ s: Scenario) throws {
        let at = Date(timeIntervalSince1970: s.evaluation)
        let p = try PoolStatus.evaluate(s.pool(), api: api, now: at)
        let expected = ["a", "b"].map { (s.used($0, "in"), s.used($0, "out")) }
        #expect(p.status.forecast.usage.interval.start == Date(timeIntervalSince1970: s.periodStart))
        #expect(p.members.map(\.read) == expected.map(\.0))
        #expect(p.members.map(\.written) == expected.map(\.1))
        #expect(p.status.forecast.usage.used == expected.reduce(0) { $0 + $1.0 + $1.1 })
        #expect(p.history.missingHosts.isEmpty && p.history.notes.isEmpty, "\(p.history.notes)")
        #expect(abs(p.members.map(\.share).reduce(0, +) - 1) < 1e-9)
        // Everything the counters ever counted is in the history exactly once.
        for host in ["a", "b"] {
            let counted = p.history.allBuckets.filter { $0.relay == host }.reduce(UInt64(0)) { $0 + $1.bytes }
            let truth = s.series.filter { $0.labels["host"] == host && $0.labels["__name__"] == "flowmeter_bytes_total" }
                .reduce(UInt64(0)) { $0 + CounterReadings.increase($1.samples, after: 0, base: nil) }
            #expect(counted == truth, "host \(host)")
        }
        #expect(p.newestData.map { abs($0.timeIntervalSince1970 - s.evaluation) < 61 } == true)
        #expect(p.status.forecast.projection != nil)

        // With the silent member: its last sample is the pool's newest data,
        // its silence a gap, the use a lower bound, and `check` CRITICAL.
        let silent = try PoolStatus.evaluate(s.pool("a,b,c"), api: api, now: at)
        let lastOfC = s.series.first { $0.labels["host"] == "c" }!.samples.last!.time
        #expect(silent.newestData.map { abs($0.timeIntervalSince1970 - lastOfC) < 1 } == true, "\(String(describing: silent.newestData))")
        #expect(silent.history.notes.contains { $0.hasPrefix("c: no sample since") }, "\(silent.history.notes)")
        #expect(silent.status.forecast.usageIsLowerBound)
        #expect(silent.members.map(\.read).prefix(2) == p.members.map(\.read).prefix(2))
        let verdict = CheckPlugin.evaluate([silent.checkInput], options: .init(warning: try .init(parsing: "80"), critical: try .init(parsing: "95"),
                                                                             maxAge: 120),
                                           now: at, newestData: silent.newestData, knownRelays: [])
        #expect(verdict.status == .critical && verdict.line.contains("no data since"), "\(verdict.line)")
    }

    @Test(.enabled(if: LiveHarness.suiteTool("victoria-metrics") != nil && LiveHarness.suiteTool("curl") != nil,
                   "needs victoria-metrics and curl"))
    func victoriaMetricsGivesThePoolsExactUseAndEachHostsPart() throws {
        let s = Scenario()
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try freeLoopbackPort()
        let vm = try BackgroundProcess("victoria-metrics", ["-storageDataPath=\(dir)/vm", "-httpListenAddr=127.0.0.1:\(port)",
                                                            "-retentionPeriod=100y", "-search.latencyOffset=0s"], logPath: dir + "/vm.log")
        defer { vm.stop(signal: SIGINT, timeout: 10) }
        let url = "http://127.0.0.1:\(port)"
        #expect(LiveHarness.waitUntil(timeout: 20) { (try? LiveHarness.run(["curl", "-fsS", url + "/health"]).status) == 0 }, "\(vm.log)")
        try s.vmImport.write(toFile: dir + "/import.json", atomically: true, encoding: .utf8)
        let imported = try LiveHarness.run(["curl", "-fsS", "--data-binary", "@\(dir)/import.json", url + "/api/v1/import"])
        #expect(imported.status == 0, "\(imported.stderr)")
        _ = try LiveHarness.run(["curl", "-fsS", url + "/internal/force_flush"])
        try check(try PrometheusQueryClient(url: url, deadline: Date().addingTimeInterval(60)), s)
    }

    @Test(.enabled(if: LiveHarness.suiteTool("prometheus") != nil && LiveHarness.suiteTool("promtool") != nil,
                   "needs Debian's prometheus package"))
    func prometheusGivesThePoolsExactUseAndEachHostsPart() throws {
        let s = Scenario()
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try s.openMetrics.write(toFile: dir + "/input.om", atomically: true, encoding: .utf8)
        let blocks = try LiveHarness.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", dir + "/input.om", dir + "/data"], timeout: 120)
        try #require(blocks.status == 0, "\(blocks.stdout)\(blocks.stderr)")
        try "global: {}\n".write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let prometheus = try BackgroundProcess("prometheus", [
            "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data", "--storage.tsdb.retention.time=10y",
            "--web.listen-address=127.0.0.1:\(port)",
        ], logPath: dir + "/prometheus.log")
        defer { prometheus.stop(signal: SIGTERM, timeout: 10) }
        let url = "http://127.0.0.1:\(port)"
        #expect(LiveHarness.waitUntil(timeout: 30) { (try? LiveHarness.run(["curl", "-fsS", url + "/-/ready"]).status) == 0 },
                "\(prometheus.log.suffix(1500))")
        try check(try PrometheusQueryClient(url: url, deadline: Date().addingTimeInterval(60)), s)
    }
}

/// A TCP port on 127.0.0.1 nobody listens on right now (the kernel's choice).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError.command("socket: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    // Safe: both calls get a pointer to `addr` and its true size, valid for the call.
    let bound = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard bound else { throw HarnessError.command("bind: \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}
