import FlowMeterCore

/// The one way tests build a decoded packet by hand, as the decoder would hand
/// it over for an Ethernet/IPv4 frame: the transport header present, the wire
/// length the 54 bytes of Ethernet, IPv4 and TCP headers plus the payload.
extension PacketSummary {
    public static func ipv4(
        from src: IPAddress, _ srcPort: UInt16, to dst: IPAddress, _ dstPort: UInt16,
        proto: IPProtocol = .tcp, flags: TCPFlags = [], payload: UInt32 = 0, at timestampNanos: Int64 = 0
    ) -> PacketSummary {
        var s = PacketSummary()
        s.outcome = .ip
        s.family = 4
        s.proto = proto
        s.src = src; s.srcPort = PortNumber(srcPort)
        s.dst = dst; s.dstPort = PortNumber(dstPort)
        s.transportHeaderPresent = true
        s.tcpFlags = flags.rawValue
        s.payloadLength = payload
        s.wireLength = 54 + payload
        s.timestampNanos = timestampNanos
        return s
    }

    /// The same with addresses as 32-bit numbers (`0x0A00_0001` is 10.0.0.1).
    public static func ipv4(
        from src: UInt32, _ srcPort: UInt16, to dst: UInt32, _ dstPort: UInt16,
        proto: IPProtocol = .tcp, flags: TCPFlags = [], payload: UInt32 = 0, at timestampNanos: Int64 = 0
    ) -> PacketSummary {
        ipv4(from: IPAddress(ipv4: src), srcPort, to: IPAddress(ipv4: dst), dstPort,
             proto: proto, flags: flags, payload: payload, at: timestampNanos)
    }
}
