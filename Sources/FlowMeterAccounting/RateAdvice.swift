import FlowMeterCore
import Foundation

/// The RelayBandwidthRate that makes a quota last to the end of its period,
/// as lines an operator can paste into a torrc.
///
/// For a host-wide quota (no relay in its scope) the rate is the total for
/// every relay on the host together, less what the host's own non-relay
/// traffic (label `host`) uses at its current rate; each relay's share is in
/// proportion to its traffic over the last 24 hours.
public struct RateAdvice: Sendable, Equatable {
    /// Tor refuses a relay's RelayBandwidthRate below 75 KBytes
    /// (`RELAY_REQUIRED_MIN_BANDWIDTH`, 76800 bytes/s; docs/tor-facts.md §1.5).
    public static let torMinimum: UInt64 = 76_800

    /// Bytes/s per direction, as Tor applies RelayBandwidthRate.
    public var bytesPerSecond: UInt64
    /// Whether the quota counts every relay on the host.
    public var hostWide: Bool
    /// For a host-wide quota, each relay's share (by its current traffic).
    public var shares: [Share]

    public struct Share: Sendable, Equatable {
        public var relay: String
        public var bytesPerSecond: UInt64
        public var fraction: Double
        public var torrc: String { RateAdvice.torrcLine(bytesPerSecond) }
        public var belowTorMinimum: Bool { bytesPerSecond < RateAdvice.torMinimum }
    }

    public init(bytesPerSecond: UInt64, hostWide: Bool, shares: [Share]) {
        self.bytesPerSecond = bytesPerSecond; self.hostWide = hostWide; self.shares = shares
    }

    public var torrc: String { RateAdvice.torrcLine(bytesPerSecond) }
    public var belowTorMinimum: Bool { bytesPerSecond < RateAdvice.torMinimum }

    /// `RelayBandwidthRate N KBytes`, rounded down so the quota still lasts.
    public static func torrcLine(_ bytesPerSecond: UInt64) -> String {
        "RelayBandwidthRate \(bytesPerSecond / 1024) KBytes"
    }

    /// Advice for `rate` bytes/s per direction; `recent` are the scope's
    /// buckets of the last 24 hours (for a host-wide quota's shares).
    public static func advise(rate: UInt64, quota: Quota, recent: [UsageBucket]) -> RateAdvice {
        guard quota.scope.relay == nil else { return RateAdvice(bytesPerSecond: rate, hostWide: false, shares: []) }
        var perRelay: [String: Double] = [:]
        for b in recent where quota.scope.includes(b) {
            perRelay[b.relay, default: 0] += Double(quota.scope.bytes(of: b))
        }
        let hostOwn = perRelay.removeValue(forKey: "host") ?? 0
        let relayTotal = perRelay.values.reduce(0, +)
        let all = relayTotal + hostOwn
        // The host's own traffic keeps flowing whatever the relays are set to.
        let forRelays = all > 0 ? Double(rate) * relayTotal / all : Double(rate)
        let shares = perRelay.sorted { $0.key < $1.key }.map { relay, bytes in
            let fraction = relayTotal > 0 ? bytes / relayTotal : 0
            return Share(relay: relay, bytesPerSecond: UInt64(forRelays * fraction), fraction: fraction)
        }
        return RateAdvice(bytesPerSecond: UInt64(forRelays), hostWide: true, shares: shares)
    }
}
