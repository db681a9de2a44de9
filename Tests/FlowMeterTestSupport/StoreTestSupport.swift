import Foundation
import GRDB

/// Cumulative counters built by hand: `add` counts packets into one slot.
struct SyntheticCounters {
    let block = CounterBlock(layout: CounterLayout(relayCount: 2))
    func add(_ packets: Int, bytes: UInt32 = 100, slot: CounterSlot = CounterSlot(relay: 1, category: .orInbound, direction: .inbound)) {
        var s = PacketSummary()
        s.wireLength = bytes
        s.payloadLength = bytes / 2
        for _ in 0..<packets { block.count(s, into: slot, peerIsTorInternal: false) }
    }
    var snapshot: CounterSnapshot { block.snapshot() }
}

let relayLabels = ["host", "relay1"]
/// 2026-03-01T00:00:00Z: a Sunday, the first day of a month.
let epoch = Date(timeIntervalSince1970: 1_772_323_200)
let everything = (Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 4_000_000_000))

func hourly(_ flushSeconds: Int64 = 60) -> StoreConfiguration {
    StoreConfiguration(resolutions: [ResolutionRetention(.hour, keepDays: 90), ResolutionRetention(.day, keepDays: 5 * 366)],
                       flushIntervalSeconds: flushSeconds)
}

func storedPackets(_ path: String, resolution: BucketResolution = .hour) throws -> UInt64 {
    try AccountingReader(path: path).buckets(from: everything.0, to: everything.1, resolution: resolution)
        .reduce(0) { $0 + $1.packets }
}

/// Runs a program found on PATH (mount, umount, dd); returns its exit status.
@discardableResult
func run(_ tool: String, _ args: [String]) throws -> Int32 {
    try runProcess(tool, args, timeout: 60).status
}

/// A tiny tmpfs this test can make read-only or fill: the only honest way to
/// get EROFS or ENOSPC as root, which ignores chmod.
struct TinyMount {
    let dir: TempDir
    var path: String { dir.url.path }
    init?(sizeKiB: Int) throws {
        dir = try TempDir()
        guard try run("mount", ["-t", "tmpfs", "-o", "size=\(sizeKiB)k", "tmpfs", dir.url.path]) == 0 else {
            dir.cleanup()
            return nil
        }
    }
    struct RemountFailed: Error {}
    func remount(readOnly: Bool) throws {
        guard try run("mount", ["-o", "remount,\(readOnly ? "ro" : "rw")", path]) == 0 else { throw RemountFailed() }
    }
    func unmount() {
        _ = try? run("umount", ["-l", path])
        dir.cleanup()
    }
}

/// Whether this process may mount a tmpfs (root on Linux); tests that need a
/// read-only or full file system are skipped elsewhere, with this reason.
/// Only in the full tier (LiveHarness.fullTier).
let canMount: Bool = {
    guard LiveHarness.fullTier else { return false }
    guard let m = try? TinyMount(sizeKiB: 16) else { return false }
    m.unmount()
    return true
}()
