/// What the decoder keeps of one packet: a small fixed-size value that can be
/// copied into a ring slot and handed to a worker. It never holds a pointer into
/// libpcap's buffer (that buffer is only valid until the next read).
///
/// Invariants:
/// - `wireLength` is the packet's original length (`pcap_pkthdr.len`), never `caplen`.
/// - `outcome == .failed` ⇔ `failure` names why; otherwise `failure` is meaningless.
/// - `family` is 4 or 6 once an IP header was read (even if a later header failed),
///   0 otherwise; `proto` is meaningful only when `family != 0`.
/// - `srcPort`/`dstPort` are set only for TCP and UDP (including non-first
///   fragments whose first fragment was seen).
public struct PacketSummary: Sendable {
    public var timestampNanos: Int64 = 0
    public var src: IPAddress = .zero
    public var dst: IPAddress = .zero
    public var wireLength: UInt32 = 0
    /// Transport payload bytes as the packet's own headers state them (what a
    /// socket reads or writes; what Tor's accounting counts), not from caplen.
    public var payloadLength: UInt32 = 0
    public var srcPort: PortNumber = PortNumber(0)
    public var dstPort: PortNumber = PortNumber(0)
    public var proto: IPProtocol = IPProtocol(rawValue: 255)
    public var tcpFlags: UInt8 = 0
    public var family: UInt8 = 0
    public var outcome: DecodeOutcome = .failed
    public var failure: DecodeFailure = .emptyRecord
    /// Set for Linux cooked captures that say the packet was sent by this host.
    public var linkSaysOutgoing: Bool = false
    public var linkSaysIncoming: Bool = false
    /// The IP header (and extension chain) was read and the transport header
    /// starts here: false for later fragments and for bad IP headers. Only
    /// then is the packet counted as TCP/UDP/ICMP in the protocol counters.
    public var transportHeaderPresent: Bool = false

    public init() {}

    public var hasPorts: Bool { proto == .tcp || proto == .udp }

    /// A hash that is the same for both directions of a connection, used to
    /// pick a worker so that one worker sees the whole conversation.
    @inline(__always)
    public var symmetricFlowHash: UInt64 {
        Self.symmetricFlowHash(src.hi, src.lo, srcPort.rawValue, dst.hi, dst.lo, dstPort.rawValue, proto: proto.rawValue)
    }

    /// The same from one flow's two ends in either order (the flow table
    /// recomputes it from an entry's key when it splits a bucket).
    @inline(__always)
    static func symmetricFlowHash(_ xHi: UInt64, _ xLo: UInt64, _ xPort: UInt16,
                                  _ yHi: UInt64, _ yLo: UInt64, _ yPort: UInt16, proto: UInt8) -> UInt64 {
        let a = xHi ^ xLo &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(xPort)
        let b = yHi ^ yLo &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(yPort)
        var h = (a ^ b) &+ (a &+ b) &* 0xC2B2_AE3D_27D4_EB4F ^ UInt64(proto)
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return h
    }
}

/// TCP flag bits as they appear in byte 13 of the TCP header.
public struct TCPFlags: OptionSet, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
}
