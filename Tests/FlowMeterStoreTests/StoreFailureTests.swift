import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

/// Failures of the environment, made real: a read-only or full tmpfs (root
/// ignores chmod), and a writer process killed with SIGKILL.
@Suite struct StoreFailureTests {
    /// Linux refuses to remount a file system read-only while a file on it is
    /// open for writing, so the read-only directory is met where it is met in
    /// practice: at start (a unit with a read-only file system, a wrong mount).
    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root on Linux)"))
    func anExistingDatabaseInAReadOnlyDirectoryGivesAClearErrorAndCountsWaitInMemory() throws {
        guard let mount = try TinyMount(sizeKiB: 1024) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        let path = mount.path + "/a.db"
        do {
            let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
            let c = SyntheticCounters()
            c.add(10)
            acc.observe(c.snapshot, at: epoch)
            try acc.close()
        }
        try mount.remount(readOnly: true)
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let opening = acc.openError?.description ?? ""
        #expect(opening.contains("Read-only file system") || opening.contains("read-only"), "unclear error: \(opening)")
        let c = SyntheticCounters()
        c.add(5)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(30))
        #expect(!acc.flush(reason: .interval))
        c.add(1)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(90))  // an interval flush fails again
        #expect(acc.stats.failedFlushes == 2)
        #expect(acc.pendingPackets == 6)
        #expect(try storedPackets(path) == 10)  // reports still read it (immutable, no -wal left)

        try mount.remount(readOnly: false)
        #expect(acc.flush(reason: .interval))
        #expect(acc.stats.lastError == nil)
        try acc.close()
        #expect(try storedPackets(path) == 16)
        let integrity = try AccountingReader(path: path).integrityCheck()
        #expect(integrity == ["ok"], "\(integrity)")
    }

    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root on Linux)"))
    func aDatabaseThatCannotBeCreatedAtStartIsCreatedAtALaterFlush() throws {
        guard let mount = try TinyMount(sizeKiB: 1024) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        try mount.remount(readOnly: true)
        let path = mount.path + "/a.db"
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        #expect(acc.openError?.description.contains("Read-only file system") == true)
        let c = SyntheticCounters()
        c.add(3)
        acc.observe(c.snapshot, at: epoch)
        #expect(!acc.flush(reason: .interval))
        try mount.remount(readOnly: false)
        c.add(1)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(60))  // the interval flush opens and writes
        #expect(acc.openError == nil)
        try acc.close()
        #expect(try storedPackets(path) == 4)
    }

    @Test(.enabled(if: canMount, "needs to mount a tmpfs (root on Linux)"))
    func aFullDiskGivesAClearErrorAndPendingCountsAreWrittenWhenSpaceReturns() throws {
        guard let mount = try TinyMount(sizeKiB: 512) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        let path = mount.path + "/a.db"
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(1)
        acc.observe(c.snapshot, at: epoch)
        #expect(acc.flush(reason: .interval))

        // Fill what is left, then ask for many new buckets (new pages).
        let filler = mount.path + "/filler"
        writeFile(filler)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
        let chunk = Data(count: 4096)
        while (try? h.write(contentsOf: chunk)) != nil {}
        try? h.close()
        var expected: UInt64 = 1
        for hour in 1...200 {
            c.add(1, slot: CounterSlot(relay: hour % 2, category: .exit, direction: .outbound))
            expected += 1
            acc.observe(c.snapshot, at: epoch.addingTimeInterval(Double(hour) * 3600))
        }
        #expect(acc.stats.failedFlushes > 0)
        let message = acc.stats.lastError?.description ?? ""
        #expect(message.contains("disk is full") || message.contains("I/O error"), "unclear error: \(message)")
        #expect(acc.pendingPackets > 0)

        try FileManager.default.removeItem(atPath: filler)
        #expect(acc.flush(reason: .interval))
        try acc.close()
        #expect(try storedPackets(path) == expected)
        let integrity = try AccountingReader(path: path).integrityCheck()
        #expect(integrity == ["ok"], "\(integrity)")
    }

    /// The `flowmeter` binary built beside this test bundle.
    static var cli: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowmeter")
    }

    struct SoakRun { var counted: UInt64 = 0; var flushed: UInt64 = 0 }

    /// Starts `flowmeter db soak`, waits until it has flushed `flushes` times
    /// plus a fraction of an interval, kills it with SIGKILL and returns what
    /// it said it had counted and flushed.
    static func soakAndKill(_ path: String, flushes: Int, extraMillis: UInt32) throws -> SoakRun {
        let p = Process()
        p.executableURL = cli
        p.arguments = ["db", "soak", "--db", path, "--flush-seconds", "1", "--rate", "200"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        var text = ""
        var seen = 0
        let deadline = Date().addingTimeInterval(30)
        while seen < flushes && Date() < deadline {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            seen = text.components(separatedBy: "flushed ").count - 1
        }
        usleep(extraMillis * 1000)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
        text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        var run = SoakRun()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let n = UInt64(parts[1]) else { continue }  // a line cut by the kill is skipped
            if parts[0] == "counted" { run.counted = max(run.counted, n) }
            if parts[0] == "flushed" { run.flushed = max(run.flushed, n) }
        }
        return run
    }

    @Test func killDashNineLosesAtMostOneFlushIntervalAndLeavesASoundDatabase() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.cli.path),
                     "build the CLI first: swift build --build-tests")
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("soak.db")
        var expectedAtLeast: UInt64 = 0
        var countedTotal: UInt64 = 0
        // Three writers in a row, each killed at a different point of its flush cycle.
        for (i, extra) in [UInt32(0), 350, 700].enumerated() {
            let run = try Self.soakAndKill(path, flushes: 2, extraMillis: extra)
            #expect(run.flushed > 0)
            expectedAtLeast += run.flushed
            countedTotal += run.counted
            let stored = try storedPackets(path)
            let reader = try AccountingReader(path: path)
            let integrity = try reader.integrityCheck()
        #expect(integrity == ["ok"], "\(integrity)")
            #expect(stored >= expectedAtLeast, "run \(i): a flush reported durable was lost")
            // 200 packets a second, one-second flushes: at most one interval (plus scheduling slack) per kill.
            #expect(countedTotal - stored <= UInt64(i + 1) * 300, "run \(i): lost \(countedTotal - stored) packets")
            expectedAtLeast = stored
        }
        // Each restart after a kill is recorded as a crash gap: those periods are a lower bound.
        let reasons = try AccountingReader(path: path).gapRecords(from: everything.0, to: everything.1).map(\.reason)
        #expect(reasons.count == 2 && reasons.allSatisfy { $0 == .agentCrashed })
    }
}
