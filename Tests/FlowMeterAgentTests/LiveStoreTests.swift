import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// The agent, as a child process, against a store that fails it: a disk
/// that is full when it stops, and a database turned hostile while it runs.
/// Counts are never lost quietly, and /metrics and SIGTERM never wait on
/// the store. About 80 s together (most of it waiting for the 30 s quota
/// evaluation to meet the hostile file).
@Suite(.serialized, .enabled(if: LiveHarness.canRun && canMount, Comment(rawValue: LiveHarness.skipReason)))
struct LiveStoreTests {
    static func storedPackets(_ db: String) throws -> Int64 {
        let q = try DatabaseQueue(path: db)
        defer { try? q.close() }
        return try q.read { try Int64.fetchOne($0, sql: "SELECT coalesce(sum(packets), 0) FROM bucket WHERE resolution_seconds = 3600") } ?? 0
    }

    static func fill(_ mount: TinyMount) throws -> String {
        let filler = mount.path + "/filler"
        writeFile(filler)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
        while (try? h.write(contentsOf: Data(count: 4096))) != nil {}
        try? h.close()
        return filler
    }

    @Test func aStopOnAFullDiskExitsNonZeroWithTheCountsSpilledAndTheNextStartStoresThemOnce() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        guard let mount = try TinyMount(sizeKiB: 1024) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        let state = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let db = mount.path + "/acct.db"
        let yaml = "capture_threads: 1\nstate_directory: \(state)"
        let traffic = TestTraffic.relayHost(rounds: 40)

        let first = try RunningAgent(veth: veth, agentYAML: yaml, extraArguments: ["--db", db])
        defer { first.cleanUp() }
        #expect(try first.waitUntilServing(), "agent log:\n\(first.process.log)")
        let filler = try Self.fill(mount)
        let pcap = first.directory + "/relay-host.pcap"
        try traffic.write(to: pcap)
        #expect(try veth.replay(pcap, pps: LiveAgentTests.rate).status == 0)
        #expect(LiveHarness.waitUntil(timeout: 15) { UInt64(LiveAgentTests.counted((try? first.metrics()) ?? [:])) >= traffic.packetCount })
        let status = first.process.stop(signal: SIGTERM, timeout: 45)
        #expect(status == 1, "exit \(status.map(String.init) ?? "none (killed)"); log:\n\(first.process.log)")
        #expect(first.process.log.contains("the next start merges them"), "\(first.process.log)")
        let spills = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasPrefix("unsaved-counts-") }
        #expect(spills.count == 1, "\(spills)")

        try FileManager.default.removeItem(atPath: filler)
        for run in 0..<2 {
            let next = try RunningAgent(veth: veth, agentYAML: yaml, extraArguments: ["--db", db])
            defer { next.cleanUp() }
            #expect(try next.waitUntilServing(), "agent log:\n\(next.process.log)")
            #expect(next.process.stop(signal: SIGTERM, timeout: 30) == 0, "run \(run): \(next.process.log)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasPrefix("unsaved-counts-") }.isEmpty)
            #expect(try Self.storedPackets(db) == Int64(traffic.packetCount), "run \(run)")
        }
    }

    @Test func metricsAnswerAndSigtermIsObeyedWhileTheStoreHangsItsReaders() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/acct.db"
        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 1",
                                     extraArguments: ["--db", db, "--quota", "provider 1GiB day 00:00 sum provider tz=UTC"])
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        #expect(LiveHarness.waitUntil(timeout: 10) { (try? agent.metrics())?["flowmeter_quota_limit_bytes{quota=\"provider\"}"] != nil })

        // Another process swaps the bucket table for a view that never ends.
        let q = try DatabaseQueue(path: db)
        try q.writeWithoutTransaction { db in
            try db.execute(sql: """
                DROP TABLE bucket;
                CREATE VIEW bucket AS WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n)
                SELECT 3600 AS resolution_seconds, 0 AS start_utc, 'host' AS relay, 'exit' AS category, 'out' AS direction,
                       1 AS packets, x AS bytes, 0 AS payload_bytes, 0 AS tor_payload_bytes FROM n
                """)
        }
        try q.close()
        // Counts the store can no longer take (a view cannot be written).
        let traffic = TestTraffic.relayHost(rounds: 10)
        try traffic.write(to: dir + "/relay-host.pcap")
        #expect(try veth.replay(dir + "/relay-host.pcap", pps: LiveAgentTests.rate).status == 0)
        // Past the next quota evaluation (every 30 s), which meets the view.
        var slowest = 0.0, failures = 0
        let until = Date().addingTimeInterval(40)
        while Date() < until {
            let started = Date()
            let (code, _) = try veth.get("http://127.0.0.1:\(agent.port)/metrics", in: veth.meter)
            slowest = max(slowest, Date().timeIntervalSince(started))
            if code != 200 { failures += 1 }
            usleep(500_000)
        }
        #expect(failures == 0 && slowest < 2, "\(failures) failed scrapes, the slowest took \(slowest) s")
        let started = Date()
        let status = agent.process.stop(signal: SIGTERM, timeout: 60)
        #expect(status != nil, "SIGTERM ignored; log:\n\(agent.process.log)")
        #expect(Date().timeIntervalSince(started) < 45)
        // Its final counts could not go into a view: kept aside, and the exit says so.
        #expect(status == 1, "exit \(status.map(String.init) ?? "none"); log:\n\(agent.process.log)")
        #expect(agent.process.log.contains("the next start merges them"), "\(agent.process.log)")
    }
}
