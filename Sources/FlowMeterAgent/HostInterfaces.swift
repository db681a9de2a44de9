import FlowMeterCore
import Foundation

/// The interfaces that carry this host's own traffic, for an agent that no
/// configured address points anywhere (a fresh install, a relay behind NAT
/// whose torrc names its public address): those with an address of the host
/// (not loopback, not link-local) and those its default routes leave by, in
/// the kernel's order, loopback excluded. This is what vnstat counts on an
/// unconfigured host.
public struct HostInterfaces: Sendable, Equatable {
    /// One address assigned to an interface (getifaddrs).
    public struct Assigned: Sendable, Equatable {
        public var interface: String
        public var address: IPAddress
        public var loopback: Bool
        public init(interface: String, address: IPAddress, loopback: Bool = false) {
            self.interface = interface; self.address = address; self.loopback = loopback
        }
    }

    public var interfaces: [String]

    public init(assigned: [Assigned], defaultRoutes: [String]) {
        var out: [String] = []
        for a in assigned where !a.loopback && a.interface != "lo" && Self.isHostAddress(a.address) && !out.contains(a.interface) {
            out.append(a.interface)
        }
        for name in defaultRoutes where name != "lo" && !out.contains(name) { out.append(name) }
        interfaces = out
    }

    /// This host, now: getifaddrs and the kernel's routing tables. The
    /// tables are read from /proc/self/net, the same files as /proc/net, which
    /// systemd's ProcSubset=pid hides (the packaged unit sets it).
    public static func current(procNet: String = "/proc/self/net") -> HostInterfaces {
        let v4 = (try? String(contentsOfFile: procNet + "/route", encoding: .utf8)) ?? ""
        let v6 = (try? String(contentsOfFile: procNet + "/ipv6_route", encoding: .utf8)) ?? ""
        return HostInterfaces(assigned: assignedAddresses(), defaultRoutes: defaultRouteInterfaces(ipv4: v4, ipv6: v6))
    }

    /// Not loopback (127/8, ::1) and not link-local (169.254/16, fe80::/10):
    /// an address others reach this host at.
    static func isHostAddress(_ a: IPAddress) -> Bool {
        if a.isIPv4 {
            let v = a.ipv4Value
            return v >> 24 != 127 && v >> 16 != 0xA9FE && !a.isUnspecified
        }
        return a != IPAddress(hi: 0, lo: 1) && a.hi >> 54 != 0x3FA && !a.isUnspecified
    }

    /// The interfaces of the usable default routes in /proc/net/route and
    /// /proc/net/ipv6_route (up, not a reject route), in table order.
    static func defaultRouteInterfaces(ipv4: String, ipv6: String) -> [String] {
        let up: UInt32 = 0x0001, reject: UInt32 = 0x0200   // RTF_UP, RTF_REJECT
        var out: [String] = []
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        for line in ipv4.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 8, f[1] == "00000000", f[7] == "00000000", let flags = UInt32(f[3], radix: 16),
                  flags & up != 0, flags & reject == 0 else { continue }
            if !out.contains(String(f[0])) { out.append(String(f[0])) }
        }
        // destination prefix-length source prefix-length next-hop metric refcnt use flags iface
        for line in ipv6.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 10, f[0].allSatisfy({ $0 == "0" }), f[1] == "00", let flags = UInt32(f[8], radix: 16),
                  flags & up != 0, flags & reject == 0 else { continue }
            if !out.contains(String(f[9])) { out.append(String(f[9])) }
        }
        return out
    }

    /// Every address assigned on this host, with its interface.
    static func assignedAddresses() -> [Assigned] {
        // Safe: getifaddrs' list is read only until freeifaddrs (deferred below).
        var head: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var out: [Assigned] = []
        var p = head
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr, let address = SysfsNet.address(sa) else { continue }
            let loopback = ifa.pointee.ifa_flags & UInt32(IFF_LOOPBACK) != 0
            out.append(Assigned(interface: String(cString: ifa.pointee.ifa_name), address: address, loopback: loopback))
        }
        return out
    }
}

extension InterfaceSelection {
    /// What the agent says at start when it chose the host's own interfaces:
    /// what it counts, and how to name relays or interfaces instead.
    public func notices(relayCount: Int) -> [String] {
        guard case .hostTraffic(let unmatched) = basis, !interfaces.isEmpty else { return [] }
        let list = interfaces.joined(separator: ", ")
        if relayCount == 0 {
            return ["no relay is configured: counting all of this host's traffic under \"host\" on \(list) "
                        + "(the interfaces that carry its addresses or its default route)",
                    "to count a relay, give its torrc (/etc/tor/torrc, /etc/tor/instances/NAME/torrc or --torrc) "
                        + "or list it under relays: in the config file, then restart; -i or agent.interfaces names the interfaces"]
        }
        let why = unmatched.isEmpty ? "no address of this host is configured"
            : "no interface carries a configured address (a torrc's Address may be a public address in front of this host)"
        return ["\(why): capturing on \(list), the interfaces that carry this host's addresses or its default route; "
                    + "-i or agent.interfaces names them"]
    }
}
