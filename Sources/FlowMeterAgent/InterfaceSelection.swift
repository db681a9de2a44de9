import FlowMeterCore
import FlowMeterCapture
import FlowMeterConfig
import FlowMeterExport
import Foundation

/// Which interfaces the agent captures, and why.
public struct InterfaceSelection: Sendable, Equatable {
    public var interfaces: [String]
    /// Targets left out because a lower device already sees their packets.
    public var warnings: [String]
    public var basis: Basis

    /// Why these interfaces.
    public enum Basis: Sendable, Equatable {
        /// `-i` or `agent.interfaces`.
        case named
        /// They carry a configured address.
        case configuredAddresses
        /// No configured address is on any interface (or none is configured):
        /// the host's own interfaces (`HostInterfaces`). `unmatched` lists
        /// configured addresses no interface carries.
        case hostTraffic(unmatched: [IPAddress])
    }

    /// The explicit list when one is given; else the interfaces that carry
    /// the configured addresses; else, so that an unconfigured host still
    /// counts and never fails to start, the host's own interfaces. Then
    /// overlapping targets (a VLAN, bridge or bond and the device below it)
    /// are reduced to the lower device, so each packet is counted once, at
    /// one defined point: the lower device sees the upper one's traffic
    /// (VLAN-tagged, which the decoder strips).
    public static func choose(explicit: [String], addresses: [IPAddress], sysfs: SysfsNet = SysfsNet(),
                              host: () -> HostInterfaces = { HostInterfaces.current() }) -> InterfaceSelection {
        var chosen = explicit
        var basis = Basis.named
        var warnings: [String] = []
        if chosen.isEmpty {
            chosen = sysfs.interfacesCarrying(addresses)
            basis = .configuredAddresses
        }
        if chosen.isEmpty && explicit.isEmpty {
            chosen = host().interfaces
            basis = .hostTraffic(unmatched: addresses)
        }
        var unique: [String] = []
        for name in chosen where !unique.contains(name) { unique.append(name) }
        var kept: [String] = []
        for name in unique {
            let lowers = sysfs.allLowerDevices(of: name)
            if let below = unique.first(where: { $0 != name && lowers.contains($0) }) {
                warnings.append("\(name) overlaps \(below) (\(below) is below it): capturing only \(below), so packets are counted once")
                continue
            }
            kept.append(name)
        }
        return InterfaceSelection(interfaces: kept, warnings: warnings, basis: basis)
    }
}

/// Reads /sys/class/net (or a copy of it in tests).
public struct SysfsNet: Sendable {
    public var root: String
    public init(root: String = "/sys/class/net") { self.root = root }

    /// Every device below `name`, transitively (its `lower_*` links).
    public func allLowerDevices(of name: String) -> Set<String> {
        var out = Set<String>()
        var queue = [name]
        while let next = queue.popLast() {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(next)")) ?? []
            for e in entries where e.hasPrefix("lower_") {
                let lower = String(e.dropFirst("lower_".count))
                if out.insert(lower).inserted { queue.append(lower) }
            }
        }
        return out
    }

    /// A statistics counter (`rx_dropped`, `rx_packets`…), nil if unreadable.
    public func statistic(_ name: String, of interface: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: "\(root)/\(interface)/statistics/\(name)", encoding: .utf8) else { return nil }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The link speed in Mbit/s the kernel reports for a device with
    /// hardware behind it (a `device` link), or for a VLAN, bridge or bond
    /// the fastest device below it; nil when unknown. A device without
    /// hardware and nothing below (veth, tun, loopback) reports a figure
    /// that measures nothing (veth says 10000), so it counts as unknown.
    public func linkSpeedMbits(_ interface: String) -> Int? {
        func own(_ name: String) -> Int? {
            guard FileManager.default.fileExists(atPath: "\(root)/\(name)/device"),
                  let text = try? String(contentsOfFile: "\(root)/\(name)/speed", encoding: .utf8),
                  let mbits = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), mbits > 0 else { return nil }
            return mbits
        }
        if let mbits = own(interface) { return mbits }
        return allLowerDevices(of: interface).compactMap(own).max()
    }

    public func interfaceIndex(_ interface: String) -> UInt32 {
        guard let text = try? String(contentsOfFile: "\(root)/\(interface)/ifindex", encoding: .utf8) else { return 0 }
        return UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Interfaces with one of `addresses` assigned (getifaddrs), in the order
    /// the kernel lists them.
    public func interfacesCarrying(_ addresses: [IPAddress]) -> [String] {
        guard !addresses.isEmpty else { return [] }
        // Safe: getifaddrs' list is read only until freeifaddrs (deferred below).
        var head: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var out: [String] = []
        var p = head
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr else { continue }
            let address = Self.address(sa)
            let name = String(cString: ifa.pointee.ifa_name)
            if let address, addresses.contains(address), !out.contains(name) { out.append(name) }
        }
        return out
    }

    /// An AF_INET or AF_INET6 socket address as an `IPAddress`; nil for other families.
    static func address(_ sa: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        if sa.pointee.sa_family == sa_family_t(AF_INET) {
            let v = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            return IPAddress(ipv4: UInt32(bigEndian: v))
        }
        guard sa.pointee.sa_family == sa_family_t(AF_INET6) else { return nil }
        var a6 = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
        var buf = [CChar](repeating: 0, count: 64)
        guard inet_ntop(AF_INET6, &a6, &buf, 64) != nil else { return nil }
        // Safe: inet_ntop NUL-terminates within the INET6_ADDRSTRLEN-sized buffer.
        return buf.withUnsafeBufferPointer { IPAddress(parsing: String(cString: $0.baseAddress!)) }
    }
}

/// The kernel's counters of each captured interface that say something
/// about what the capture saw, counted from the agent's start (a kernel
/// counter exported as-is would show the counts of before the start as a
/// spike). A counter that went down means the device was recreated; its
/// new value is all new.
///
/// Two kinds, kept apart on purpose:
/// * loss: `rx_missed_errors` and `rx_fifo_errors`, frames the NIC never
///   delivered to the kernel (its ring or FIFO was full), so no packet tap
///   saw them. These make counts a lower bound.
/// * `rx_dropped`: frames the stack discarded, almost always after the tap
///   (a protocol nobody handles, a frame for another MAC, IPv6 on an
///   interface where it is disabled); FlowMeter counted them. Exported for
///   information, never counted as a loss.
public final class InterfaceDropCounter: Sendable {
    public struct Reading: Sendable, Equatable {
        public var interface: String
        /// Frames the NIC never delivered (`rx_missed_errors` + `rx_fifo_errors`).
        public var lost: UInt64
        /// The stack's `rx_dropped` (informative).
        public var rxDropped: UInt64
    }
    static let lossStatistics = ["rx_missed_errors", "rx_fifo_errors"]
    private static let followed = lossStatistics + ["rx_dropped"]
    private let state: Mutex<[String: [String: (last: UInt64, total: UInt64)]]>
    private let sysfs: SysfsNet

    public init(interfaces: [String], sysfs: SysfsNet = SysfsNet()) {
        self.sysfs = sysfs
        var s: [String: [String: (last: UInt64, total: UInt64)]] = [:]
        for i in interfaces {
            for name in Self.followed { s[i, default: [:]][name] = (sysfs.statistic(name, of: i) ?? 0, 0) }
        }
        state = Mutex(s)
    }

    public func read() -> [Reading] {
        state.withLock { s in
            for (interface, counters) in s {
                for (name, v) in counters {
                    guard let now = sysfs.statistic(name, of: interface) else { continue }
                    let added = now >= v.last ? now - v.last : now
                    s[interface]![name] = (now, v.total &+ added)
                }
            }
            return s.keys.sorted().map { i in
                let c = s[i]!
                return Reading(interface: i, lost: Self.lossStatistics.reduce(0) { $0 &+ (c[$1]?.total ?? 0) },
                               rxDropped: c["rx_dropped"]?.total ?? 0)
            }
        }
    }
}

import Synchronization
