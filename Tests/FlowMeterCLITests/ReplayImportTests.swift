import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `replay --db` counts each capture once (docs/storage.md, "Imports"):
/// the same capture again is skipped with a message, an import killed with
/// SIGKILL is redone whole by the next run, and one that meets a full disk
/// names the days it could not store, in about the time a good one takes.
@Suite struct ReplayImportTests {
    /// Writes a classic pcap of `packets` DNS-over-UDP packets spread evenly
    /// over `days` days from 2026-03-01 (a wire length 100 bytes over caplen).
    static func capture(_ path: String, packets: Int, days: Int) throws {
        let script = """
            import struct, sys
            out, n, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
            start = 1772323200
            with open(out, "wb") as f:
                f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
                eth = bytes.fromhex("020000000001020000000002") + b"\\x08\\x00"
                for i in range(n):
                    t = start + (i * days * 86400) // n
                    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, i & 0xffff, 0, 64, 17, 0,
                                     bytes([10, 0, (i >> 8) & 255, i & 255]), bytes([10, 1, 0, 1]))
                    pkt = eth + ip + struct.pack("!HHHH", 40000 + i % 1000, 53, 8, 0)
                    f.write(struct.pack("<IIII", t, i % 1000000, len(pkt), len(pkt) + 100))
                    f.write(pkt)
            """
        let r = try runProcess("python3", ["-c", script, path, String(packets), String(days)], timeout: 60)
        try #require(r.status == 0, "\(r.stderr)")
    }

    static func storedHourTotals(_ db: String) throws -> (packets: Int64, bytes: Int64) {
        let q = try DatabaseQueue(path: db)
        defer { try? q.close() }
        return try q.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT coalesce(sum(packets), 0) AS p, coalesce(sum(bytes), 0) AS b FROM bucket WHERE resolution_seconds = 3600")!
            return (row["p"], row["b"])
        }
    }

    @Test(.enabled(if: LiveHarness.suiteTool("python3") != nil, "needs python3 to write the capture"))
    func theSameCaptureImportedTwiceIsCountedOnceAndTheSecondIsSkippedWithAMessage() throws {
        let dir = makeTemporaryDirectory("import-twice")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.capture(dir + "/a.pcap", packets: 2000, days: 2)
        try FileManager.default.copyItem(atPath: dir + "/a.pcap", toPath: dir + "/renamed.pcap")
        let first = try runProcess(Repo.flowmeterBinary, ["replay", "--db", dir + "/acct.db", dir + "/a.pcap"], timeout: 60)
        #expect(first.status == 0, "\(first.stderr)")
        let once = try Self.storedHourTotals(dir + "/acct.db")
        #expect(once.packets == 2000)
        for name in ["a.pcap", "renamed.pcap"] {
            let again = try runProcess(Repo.flowmeterBinary, ["replay", "--db", dir + "/acct.db", dir + "/" + name], timeout: 60)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stderr.contains("already imported"), "\(again.stderr)")
        }
        let twice = try runProcess(Repo.flowmeterBinary, ["replay", "--db", dir + "/b.db", dir + "/a.pcap", dir + "/renamed.pcap"], timeout: 60)
        #expect(twice.stderr.contains("counted once"), "\(twice.stderr)")
        #expect(try Self.storedHourTotals(dir + "/acct.db") == once)
        #expect(try Self.storedHourTotals(dir + "/b.db") == once)
    }

    @Test(.enabled(if: LiveHarness.suiteTool("python3") != nil, "needs python3 to write the capture"))
    func anImportKilledMidwayIsRedoneWholeWithoutCountingAnythingTwice() throws {
        let dir = makeTemporaryDirectory("import-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.capture(dir + "/big.pcap", packets: 300_000, days: 4)
        let reference = try runProcess(Repo.flowmeterBinary, ["replay", "--db", dir + "/ref.db", dir + "/big.pcap"], timeout: 120)
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try Self.storedHourTotals(dir + "/ref.db")
        #expect(expected.packets == 300_000)

        // Kill at several points of the import; each re-run must end at the
        // reference. A fast machine may finish before the later kills: then
        // the re-runs must find it imported; at least one kill must land midway.
        var killedMidwayCount = 0
        for delay in [0.3, 1.0, 2.0] {
            let db = dir + "/killed-\(delay).db"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Repo.flowmeterBinary)
            p.arguments = ["replay", "--db", db, dir + "/big.pcap"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(delay * 1_000_000))
            let killedMidway = p.isRunning
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if killedMidway { killedMidwayCount += 1 }
            let rerun = try runProcess(Repo.flowmeterBinary, ["replay", "--db", db, dir + "/big.pcap"], timeout: 120)
            #expect(rerun.status == 0, "\(rerun.stderr)")
            #expect(try Self.storedHourTotals(db) == expected, "killed after \(delay) s")
            let third = try runProcess(Repo.flowmeterBinary, ["replay", "--db", db, dir + "/big.pcap"], timeout: 120)
            #expect(third.stderr.contains("already imported"))
            #expect(try Self.storedHourTotals(db) == expected, "killed after \(delay) s, then imported twice")
        }
        #expect(killedMidwayCount > 0, "every import finished before its kill: make the capture larger")
    }

    @Test(.enabled(if: canMount && LiveHarness.suiteTool("python3") != nil, "needs root to mount a tmpfs, and python3"))
    func anImportIntoAFullDiskNamesTheMissingDaysAndTriesTheStoreOnlyAFewTimes() throws {
        let dir = makeTemporaryDirectory("import-full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.capture(dir + "/month.pcap", packets: 100_000, days: 12)
        var started = Date()
        let good = try runProcess(Repo.flowmeterBinary, ["replay", "--db", dir + "/good.db", dir + "/month.pcap"], timeout: 120)
        let goodSeconds = Date().timeIntervalSince(started)
        #expect(good.status == 0, "\(good.stderr)")

        guard let mount = try TinyMount(sizeKiB: 256) else { Issue.record("mount failed"); return }
        defer { mount.unmount() }
        // Leave room to create the database, not to hold twelve days of buckets.
        try Data(count: 216 * 1024).write(to: URL(fileURLWithPath: mount.path + "/filler"))
        started = Date()
        let full = try runProcess(Repo.flowmeterBinary, ["replay", "--db", mount.path + "/acct.db", dir + "/month.pcap"], timeout: 120)
        let fullSeconds = Date().timeIntervalSince(started)
        #expect(full.status == 1, "\(full.stderr)")
        #expect(full.stderr.contains("2026-03-01 to 2026-03-12"), "\(full.stderr)")
        // No retry storm: the store is tried at the open, at the flush and once at the end, not once per
        // bucket or packet (counted in attempts, not seconds: the machines are shared).
        let attempts = full.stderr.split(separator: "\n").count(where: { $0.contains("SQLITE_FULL") })
        #expect(attempts <= 3, "\(attempts) attempts to write (good import \(goodSeconds) s, into a full disk \(fullSeconds) s):\n\(full.stderr)")
    }
}
