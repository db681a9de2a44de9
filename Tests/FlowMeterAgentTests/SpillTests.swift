import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// Stopping while the store cannot be written: the final counts go to a
/// spill file in the state directory, the next start merges them exactly
/// once, and when even the spill fails the loss is said loudly. Real full
/// tmpfs mounts; the child-process version is in LiveStoreTests.
@Suite(.serialized) struct SpillTests {
    /// A reading whose counters are `c`'s.
    static func reading(_ c: SyntheticCounters) -> AgentReading {
        var r = AgentReading()
        r.generations = [(relayLabels, c.snapshot)]
        return r
    }

    static func fill(_ mount: TinyMount) throws -> String {
        let filler = mount.path + "/filler"
        writeFile(filler)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
        while (try? h.write(contentsOf: Data(count: 4096))) != nil {}
        try? h.close()
        return filler
    }

    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root on Linux)"))
    func theFinalCountsOfAStopOnAFullDiskAreSpilledAndMergedExactlyOnce() throws {
        guard let mount = try TinyMount(sizeKiB: 512) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        let state = try TempDir(); defer { state.cleanup() }
        let log = CollectedLog()
        let db = mount.path + "/a.db"
        let c = SyntheticCounters()
        do {
            let store = try AgentStore(path: db, configuration: hourly(), labels: relayLabels, quotas: [],
                                       spillDirectory: state.url.path, logger: log.logger)
            c.add(5)
            store.tick(Self.reading(c), now: epoch)
            store.tick(Self.reading(c), now: epoch.addingTimeInterval(3600))   // an edge: 5 packets written
            let filler = try Self.fill(mount)
            for hour in 2...200 {
                c.add(1, slot: CounterSlot(relay: hour % 2, category: .exit, direction: .outbound))
                store.tick(Self.reading(c), now: epoch.addingTimeInterval(Double(hour) * 3600))
            }
            c.add(7)
            let result = store.close(Self.reading(c), now: epoch.addingTimeInterval(200.5 * 3600))
            guard case .spilled(let file, let packets) = result else {
                Issue.record("expected a spill, got \(result): \(log.messages(atLeast: .trace))")
                return
            }
            #expect(packets > 7 && packets <= 206, "\(packets) packets spilled")
            #expect(FileManager.default.fileExists(atPath: file))
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            try FileManager.default.removeItem(atPath: filler)
        }
        // The next start merges it; a copy of it left behind (a failed delete) is not merged twice.
        let spilled = try #require(try FileManager.default.contentsOfDirectory(atPath: state.url.path).first)
        let copy = try Data(contentsOf: URL(fileURLWithPath: state.path(spilled)))
        for run in 0..<2 {
            let store = try AgentStore(path: db, configuration: hourly(), labels: relayLabels, quotas: [],
                                       spillDirectory: state.url.path, logger: log.logger)
            #expect(try FileManager.default.contentsOfDirectory(atPath: state.url.path).isEmpty, "run \(run): the spill stayed")
            // A new agent's counters start from zero; this one counts nothing.
            #expect(store.close(Self.reading(SyntheticCounters()), now: epoch.addingTimeInterval(Double(201 + run) * 3600)) == .stored)
            let stored = try storedPackets(db)
            #expect(stored == 5 + 199 + 7, "run \(run): \(stored) packets stored")
            try copy.write(to: URL(fileURLWithPath: state.path(spilled)))
        }
        // The merged span is not a lower bound: only the short stop after it is.
        let gaps = try AccountingReader(path: db).gapRecords(from: epoch, to: epoch.addingTimeInterval(300 * 3600))
        #expect(!gaps.contains { $0.reason == .agentCrashed }, "\(gaps)")
    }

    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root on Linux)"))
    func whenTheSpillCannotBeWrittenEitherTheLossIsSaidLoudly() throws {
        guard let mount = try TinyMount(sizeKiB: 512) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        let log = CollectedLog()
        let c = SyntheticCounters()
        // The spill would go to the same full file system.
        let store = try AgentStore(path: mount.path + "/a.db", configuration: hourly(), labels: relayLabels, quotas: [],
                                   spillDirectory: mount.path, logger: log.logger)
        c.add(3)
        store.tick(Self.reading(c), now: epoch)
        _ = try Self.fill(mount)
        for hour in 1...100 {
            c.add(1, slot: CounterSlot(relay: hour % 2, category: .exit, direction: .outbound))
            store.tick(Self.reading(c), now: epoch.addingTimeInterval(Double(hour) * 3600))
        }
        let result = store.close(Self.reading(c), now: epoch.addingTimeInterval(100.5 * 3600))
        guard case .lost(let packets, _) = result else { Issue.record("expected a loss, got \(result)"); return }
        #expect(packets > 0)
        let critical = log.messages(atLeast: .critical)
        #expect(critical.count == 1 && critical[0].contains("packets' counts are LOST"), "\(critical)")
    }
}
