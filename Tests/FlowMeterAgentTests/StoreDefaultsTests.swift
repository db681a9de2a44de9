import Foundation
import Testing
import Yams
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// The `store:` section, the default store path, and the store's health as
/// the agent exports it when the disk fills after start.
@Suite struct StoreDefaultsTests {
    private func parse(_ yaml: String) throws(ConfigError) -> StoreSettings {
        let root = try! Yams.compose(yaml: yaml)
        return try StoreSettings.parse(root?.mapping?["store"], file: "flowmeter.yaml")
    }

    @Test func withoutAStoreSectionHistoryGoesToTheStateDirectoryInHourBuckets() throws {
        let s = try parse("host: {}\n")
        #expect(s.resolvedPath(stateDirectory: "/var/lib/flowmeter") == "/var/lib/flowmeter/accounting.db")
        #expect(s.configuration == StoreConfiguration())
        var agent = AgentSettings()
        #expect(agent.effectiveStateDirectory(environment: [:], root: "/") == "/var/lib/flowmeter")
        #expect(agent.effectiveStateDirectory(environment: ["STATE_DIRECTORY": "/var/lib/fm:/x"]) == "/var/lib/fm")
        agent.stateDirectory = "/srv/fm"
        #expect(agent.effectiveStateDirectory(environment: ["STATE_DIRECTORY": "/var/lib/fm"]) == "/srv/fm")
    }

    @Test func theStoreSectionSetsPathBucketAndRetention() throws {
        let s = try parse("store:\n  path: /srv/a.db\n  bucket: 1d\n  retention: forever\n")
        #expect(s.resolvedPath(stateDirectory: "/x") == "/srv/a.db")
        #expect(s.configuration.resolutions == [ResolutionRetention(.day, keepDays: nil)])
        let h = try parse("store:\n  retention: 30d\n")
        #expect(h.configuration.resolutions == [ResolutionRetention(.hour, keepDays: 30), ResolutionRetention(.day, keepDays: 5 * 366)])
        let fine = try parse("store:\n  bucket: 5m\n  allow_fine_buckets: true\n")
        #expect(fine.configuration.resolutions.first == ResolutionRetention(.fiveMinutes, keepDays: 90))
    }

    @Test func aBadStoreSectionNamesTheLineAndTheProblem() {
        #expect(throws: ConfigError(file: "flowmeter.yaml", line: 3, "store.bucket must be a length that divides a day, like 5m, 1h or 1d, got '7m'")) {
            try parse("host: {}\nstore:\n  bucket: 7m\n")
        }
        #expect(throws: ConfigError.self) { try parse("store:\n  bucket: 5m\n") }   // finer than 1h needs allow_fine_buckets
        #expect(throws: ConfigError.self) { try parse("store:\n  path: relative.db\n") }
        #expect(throws: ConfigError.self) { try parse("store:\n  db: /x.db\n") }
    }

    @Test func storeHealthRendersThreeSeries() {
        let text = StoreHealthMetrics.text(StoreHealth(up: false, lastFlushSeconds: 1_772_323_200, writeFailures: 3))
        #expect(text.contains("\nflowmeter_store_up 0\n"))
        #expect(text.contains("\nflowmeter_store_last_flush_timestamp_seconds 1772323200.0\n"))
        #expect(text.contains("\nflowmeter_store_write_failures_total 3\n"))
    }

    /// A full disk after start: counting goes on, health says so, the error
    /// is logged once (not once per retry), and recovery is seen.
    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root on Linux)"))
    func aStoreThatFillsUpAfterStartIsReportedDownAndLoggedOnce() throws {
        guard let mount = try TinyMount(sizeKiB: 512) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        let log = CollectedLog()
        let store = try AgentStore(path: mount.path + "/a.db", configuration: hourly(), labels: relayLabels, quotas: [], logger: log.logger)
        let c = SyntheticCounters()
        func tick(_ hours: Double) {
            var r = AgentReading()
            r.generations = [(relayLabels, c.snapshot)]
            store.tick(r, now: epoch.addingTimeInterval(hours * 3600))
        }
        c.add(1)
        tick(0)
        tick(1)
        #expect(store.health().up && store.health().lastFlushSeconds != nil)

        let filler = mount.path + "/filler"
        writeFile(filler)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
        while (try? h.write(contentsOf: Data(count: 4096))) != nil {}
        try? h.close()
        for hour in 2...200 {
            c.add(1, slot: CounterSlot(relay: hour % 2, category: .exit, direction: .outbound))
            tick(Double(hour))
        }
        let down = store.health()
        #expect(!down.up && down.writeFailures > 1)
        #expect(log.messages(atLeast: .error).count == 1, "a repeated failure is logged once")

        try FileManager.default.removeItem(atPath: filler)
        tick(201)
        #expect(store.health().up)
        #expect(store.health().lastFlushSeconds == epoch.addingTimeInterval(201 * 3600).timeIntervalSince1970)
    }
}
