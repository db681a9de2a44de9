// The typed vocabulary of the hot path. Following swift-system's style these are
// RawRepresentable structs with static members rather than closed enums, so an
// unknown value read off the wire round-trips instead of trapping.

/// A libpcap data-link type as returned by `pcap_datalink` (DLT value).
public struct LinkType: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let null = LinkType(rawValue: 0)          // BSD loopback, host-order AF
    public static let ethernet = LinkType(rawValue: 1)
    public static let raw = LinkType(rawValue: 12)          // DLT_RAW on Linux
    public static let rawOpenBSD = LinkType(rawValue: 14)   // DLT_RAW on OpenBSD
    public static let rawLinktype = LinkType(rawValue: 101) // LINKTYPE_RAW
    public static let loop = LinkType(rawValue: 108)        // OpenBSD loopback, network-order AF
    public static let linuxSLL = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    public static let linuxSLL2 = LinkType(rawValue: 276)
    public static let ppp = LinkType(rawValue: 9)
    public static let pppHDLC = LinkType(rawValue: 50)
    public static let ciscoHDLC = LinkType(rawValue: 104)
    public static let frameRelay = LinkType(rawValue: 107)
    public static let ppi = LinkType(rawValue: 192)
    public static let ipnet = LinkType(rawValue: 226)
    public static let nflog = LinkType(rawValue: 239)
    public static let pktap = LinkType(rawValue: 258)

    /// Whether the decoder understands this link type.
    public var isDecoded: Bool {
        switch self {
        case .null, .ethernet, .raw, .rawOpenBSD, .rawLinktype, .loop, .linuxSLL, .ipv4, .ipv6, .linuxSLL2,
             .ppp, .pppHDLC, .ciscoHDLC, .frameRelay, .ppi, .ipnet, .nflog, .pktap:
            return true
        default:
            return false
        }
    }
}

/// An EtherType in host byte order.
public struct EtherType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let ipv4 = EtherType(rawValue: 0x0800)
    public static let ipv6 = EtherType(rawValue: 0x86DD)
    public static let vlan = EtherType(rawValue: 0x8100)      // 802.1Q C-tag
    public static let qinq = EtherType(rawValue: 0x88A8)      // 802.1ad S-tag
    public static let qinqLegacy = EtherType(rawValue: 0x9100)
    public static let qinqLegacy2 = EtherType(rawValue: 0x9200)
    public static let pppoeSession = EtherType(rawValue: 0x8864)

    @inline(__always)
    var isVLANTag: Bool {
        rawValue == 0x8100 || rawValue == 0x88A8 || rawValue == 0x9100 || rawValue == 0x9200
    }
}

/// An IP protocol number (IPv4 protocol / IPv6 next header).
public struct IPProtocol: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let hopByHop = IPProtocol(rawValue: 0)
    public static let icmp = IPProtocol(rawValue: 1)
    public static let tcp = IPProtocol(rawValue: 6)
    public static let udp = IPProtocol(rawValue: 17)
    public static let routing = IPProtocol(rawValue: 43)
    public static let fragment = IPProtocol(rawValue: 44)
    public static let ah = IPProtocol(rawValue: 51)
    public static let icmpv6 = IPProtocol(rawValue: 58)
    public static let noNextHeader = IPProtocol(rawValue: 59)
    public static let destinationOptions = IPProtocol(rawValue: 60)
}

/// A TCP or UDP port number, host byte order.
public struct PortNumber: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ value: UInt16) { self.rawValue = value }
    public static func < (a: PortNumber, b: PortNumber) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }

    public static let dns = PortNumber(53)
}

/// Direction relative to the monitored host.
public struct Direction: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let inbound = Direction(rawValue: 0)
    public static let outbound = Direction(rawValue: 1)
    public static let allCases: [Direction] = [.inbound, .outbound]
    public static let count = 2

    /// Not a direction packets are counted in: the label of the store's and
    /// the reports' row for packets that could not be decoded.
    public static let none = Direction(rawValue: 255)

    public var label: String { self == .inbound ? "in" : self == .outbound ? "out" : "none" }
    public var description: String { label }

    public init?(label: String) {
        switch label {
        case "in": self = .inbound
        case "out": self = .outbound
        case "none": self = .none
        default: return nil
        }
    }
}

/// The traffic category a packet is counted under (label `category`).
public struct Category: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let orInbound = Category(rawValue: 0)
    public static let orOutbound = Category(rawValue: 1)
    public static let dir = Category(rawValue: 2)
    public static let exit = Category(rawValue: 3)
    public static let dns = Category(rawValue: 4)
    public static let other = Category(rawValue: 5)
    public static let nonIP = Category(rawValue: 6)

    public static let allCases: [Category] = [.orInbound, .orOutbound, .dir, .exit, .dns, .other, .nonIP]
    public static let count = 7
    /// Not a category packets are counted in: the label of the store's and the
    /// reports' row for packets that could not be decoded (reasons summed).
    public static let undecoded = Category(rawValue: 255)

    public var label: String {
        switch self {
        case .orInbound: return "or_inbound"
        case .orOutbound: return "or_outbound"
        case .dir: return "dir"
        case .exit: return "exit"
        case .dns: return "dns"
        case .other: return "other"
        case .nonIP: return "non_ip"
        case .undecoded: return "undecoded"
        default: return "category_\(rawValue)"
        }
    }

    public var description: String { label }

    public init?(label: String) {
        guard let c = (Category.allCases + [.undecoded]).first(where: { $0.label == label }) else { return nil }
        self = c
    }

    /// Categories that carry a Tor relay's own traffic (what Tor's accounting sees).
    public var isRelayTraffic: Bool {
        self == .orInbound || self == .orOutbound || self == .dir || self == .exit
    }
}

/// Why a packet could not be fully decoded. Every undecodable packet increments
/// exactly one of these; the list is fixed so counters are a flat array.
public struct DecodeFailure: RawRepresentable, Hashable, Sendable, CaseIterable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let linkTypeUnsupported = DecodeFailure(rawValue: 0)
    public static let linkHeaderTruncated = DecodeFailure(rawValue: 1)
    public static let vlanTruncated = DecodeFailure(rawValue: 2)
    public static let vlanTooDeep = DecodeFailure(rawValue: 3)
    public static let pppoeTruncated = DecodeFailure(rawValue: 4)
    public static let ipVersionInvalid = DecodeFailure(rawValue: 5)
    public static let ipv4Truncated = DecodeFailure(rawValue: 6)
    public static let ipv4HeaderLengthInvalid = DecodeFailure(rawValue: 7)
    public static let ipv4TotalLengthInvalid = DecodeFailure(rawValue: 8)
    public static let ipv6Truncated = DecodeFailure(rawValue: 9)
    public static let ipv6ExtensionTruncated = DecodeFailure(rawValue: 10)
    public static let ipv6ExtensionChainTooLong = DecodeFailure(rawValue: 11)
    public static let tcpTruncated = DecodeFailure(rawValue: 12)
    public static let tcpHeaderLengthInvalid = DecodeFailure(rawValue: 13)
    public static let udpTruncated = DecodeFailure(rawValue: 14)
    public static let fragmentFirstNotSeen = DecodeFailure(rawValue: 15)
    public static let emptyRecord = DecodeFailure(rawValue: 16)
    /// A capture record whose time no clock can mean (a microsecond field of
    /// 10^6 or more, nanoseconds of 10^9 or more, a time before 1970 or past
    /// what 64-bit nanoseconds hold): counted here, never placed in time.
    public static let timestampInvalid = DecodeFailure(rawValue: 17)

    public static let allCases: [DecodeFailure] = (0..<18).map { DecodeFailure(rawValue: $0) }
    public static let count = 18

    public var label: String {
        switch rawValue {
        case 0: return "link_type_unsupported"
        case 1: return "link_header_truncated"
        case 2: return "vlan_truncated"
        case 3: return "vlan_too_deep"
        case 4: return "pppoe_truncated"
        case 5: return "ip_version_invalid"
        case 6: return "ipv4_truncated"
        case 7: return "ipv4_header_length_invalid"
        case 8: return "ipv4_total_length_invalid"
        case 9: return "ipv6_truncated"
        case 10: return "ipv6_extension_truncated"
        case 11: return "ipv6_extension_chain_too_long"
        case 12: return "tcp_truncated"
        case 13: return "tcp_header_length_invalid"
        case 14: return "udp_truncated"
        case 15: return "fragment_first_not_seen"
        case 16: return "empty_record"
        case 17: return "timestamp_invalid"
        default: return "reason_\(rawValue)"
        }
    }
}

/// An IPv4 or IPv6 address in 16 bytes; IPv4 is stored v4-mapped (::ffff:a.b.c.d)
/// so one comparison works for both families. `hi`/`lo` hold the address in
/// network byte order read as two big-endian 64-bit words.
public struct IPAddress: Hashable, Sendable, Comparable {
    public var hi: UInt64
    public var lo: UInt64

    public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }

    /// An IPv4 address given as a host-order 32-bit value.
    @inline(__always)
    public init(ipv4 value: UInt32) {
        hi = 0
        lo = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    public static let zero = IPAddress(hi: 0, lo: 0)
    public static let zeroV4 = IPAddress(ipv4: 0)

    public var isIPv4: Bool { hi == 0 && (lo >> 32) == 0x0000_FFFF }
    public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: lo) }
    public var isUnspecified: Bool { self == .zero || self == .zeroV4 }

    public static func < (a: IPAddress, b: IPAddress) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }

    /// Tor's `tor_addr_is_internal()`: peers Tor does not count for accounting
    /// unless CountPrivateBandwidth is set (docs/tor-facts.md §1.4).
    @inline(__always)
    public var isTorInternal: Bool {
        if isIPv4 {
            let v = ipv4Value
            // By first octet: one dispatch instead of seven tests for the
            // public address most peers have.
            switch v >> 24 {
            case 0, 10, 127: return true
            case 100: return v & 0xFFC0_0000 == 0x6440_0000  // 100.64/10
            case 169: return v & 0xFFFF_0000 == 0xA9FE_0000  // 169.254/16
            case 172: return v & 0xFFF0_0000 == 0xAC10_0000  // 172.16/12
            case 192: return v & 0xFFFF_0000 == 0xC0A8_0000  // 192.168/16
            default: return false
            }
        }
        let top16 = hi >> 48
        if top16 & 0xFE00 == 0xFC00 { return true }  // fc00::/7
        if top16 & 0xFFC0 == 0xFE80 { return true }  // fe80::/10
        if top16 & 0xFFC0 == 0xFEC0 { return true }  // fec0::/10
        if hi == 0 && lo <= 1 { return true }        // ::/127
        return false
    }
}

/// How far the decoder got with one packet.
public struct DecodeOutcome: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// IP with ports (TCP/UDP) or another IP protocol: classify by addresses.
    public static let ip = DecodeOutcome(rawValue: 0)
    /// A frame that is not IP (ARP, LLDP, STP, PPP control…): category non_ip.
    public static let nonIP = DecodeOutcome(rawValue: 1)
    /// Could not be decoded; `PacketSummary.failure` says why.
    public static let failed = DecodeOutcome(rawValue: 2)
}
