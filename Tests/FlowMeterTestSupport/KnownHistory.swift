import Foundation

/// A store with a known history for the live views' tests: ten days before
/// `end`, every ten minutes, 100 MiB in and 50 MiB out of guard1's
/// or_inbound traffic — far more than a test's own few kilobytes, so a quota's
/// share at one decimal does not move while the test runs.
enum KnownHistory {
    static let quotaSpec = "provider 512GiB month 1 00:00 sum provider tz=UTC"

    static func write(_ path: String, until end: Date) throws {
        let labels = ["host", "guard1"]
        let layout = CounterLayout(relayCount: labels.count)
        let acc = try BucketAccumulator(path: path, relayLabels: labels)
        var s = CounterSnapshot(layout: layout)
        let inbound = layout.index(CounterSlot(relay: 1, category: .orInbound, direction: .inbound), .bytes)
        let outbound = layout.index(CounterSlot(relay: 1, category: .orInbound, direction: .outbound), .bytes)
        let packets = layout.index(CounterSlot(relay: 1, category: .orInbound, direction: .inbound), .packets)
        var t = end.addingTimeInterval(-10 * 86_400)
        while t < end {
            s.values[inbound] += 100 << 20
            s.values[outbound] += 50 << 20
            s.values[packets] += 70_000
            acc.observe(s, at: t)
            t.addTimeInterval(600)
        }
        try acc.close()
    }
}
