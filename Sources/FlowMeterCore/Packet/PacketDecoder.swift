/// Big-endian reads over bytes borrowed from libpcap. Invariant: every read
/// lies within `count` bytes of `base`; callers check `count` before reading
/// (house rule 2) and each read asserts it in debug builds.
// Safe: the unchecked loads below stay inside the borrowed buffer because of
// that invariant; the asserts catch a missing check in debug builds (the
// corpus tests run every decoder path) and cost nothing in release.
@usableFromInline
struct WireBytes {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let count: Int

    @inline(__always) @usableFromInline
    init(base: UnsafeRawPointer, count: Int) { self.base = base; self.count = count }

    @inline(__always) @usableFromInline
    func u8(_ offset: Int) -> UInt8 {
        assert(offset >= 0 && offset + 1 <= count, "header read past the captured bytes")
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }
    @inline(__always) @usableFromInline
    func u16(_ offset: Int) -> UInt16 {
        assert(offset >= 0 && offset + 2 <= count, "header read past the captured bytes")
        return base.loadUnaligned(fromByteOffset: offset, as: UInt16.self).bigEndian
    }
    @inline(__always) @usableFromInline
    func u32(_ offset: Int) -> UInt32 {
        assert(offset >= 0 && offset + 4 <= count, "header read past the captured bytes")
        return base.loadUnaligned(fromByteOffset: offset, as: UInt32.self).bigEndian
    }
    @inline(__always) @usableFromInline
    func u64(_ offset: Int) -> UInt64 {
        assert(offset >= 0 && offset + 8 <= count, "header read past the captured bytes")
        return base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian
    }
    /// 32 bits as stored, little-endian interpretation (BSD NULL headers are host order).
    @inline(__always) @usableFromInline
    func u32LittleEndian(_ offset: Int) -> UInt32 {
        assert(offset >= 0 && offset + 4 <= count, "header read past the captured bytes")
        return base.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
    }
}

/// A link header of fixed length that names its payload with an EtherType at
/// a fixed offset, as softflowd's `lt[]` table describes them.
struct FixedLinkHeader {
    /// Where the header says whether the frame was sent by this host.
    enum PacketTypeField { case none, u16AtStart, u8AtTen }
    let length: Int
    let etherTypeOffset: Int
    let packetType: PacketTypeField

    @inline(__always)
    static func of(_ type: LinkType) -> FixedLinkHeader? {
        switch type {
        case .ethernet: FixedLinkHeader(length: 14, etherTypeOffset: 12, packetType: .none)
        case .linuxSLL: FixedLinkHeader(length: 16, etherTypeOffset: 14, packetType: .u16AtStart)
        case .linuxSLL2: FixedLinkHeader(length: 20, etherTypeOffset: 0, packetType: .u8AtTen)
        case .ciscoHDLC: FixedLinkHeader(length: 4, etherTypeOffset: 2, packetType: .none)
        default: nil
        }
    }
}

/// Decodes link, network and transport headers of one captured packet into a
/// `PacketSummary`. Headers only: no payload byte is read. Per packet it
/// allocates nothing, throws nothing and takes no lock; malformed input is data
/// and ends as exactly one `DecodeFailure`.
///
/// The decoder owns the small fragment cache, so it is used by one thread (the
/// reader); the summary it produces already carries the ports of non-first
/// fragments, which lets a symmetric flow hash route them like their flow.
public struct PacketDecoder {
    /// The link type of the records decoded; the pcapng reader switches it
    /// when a record comes from an interface of another link type.
    public internal(set) var linkType: LinkType
    /// Stacked VLAN tags beyond this depth are counted as `vlan_too_deep`.
    public static let maxVLANDepth = 8
    /// IPv6 extension headers beyond this many are `ipv6_extension_chain_too_long`.
    public static let maxIPv6Extensions = 8
    public static let maxMPLSLabels = 8

    @usableFromInline var fragments: FragmentCache

    public init(linkType: LinkType, fragmentCacheSlots: Int = 1024) {
        self.linkType = linkType
        self.fragments = FragmentCache(slots: fragmentCacheSlots)
    }

    /// Decodes one captured packet (its `caplen` bytes) whose original length
    /// was `wireLength`. The safe entry point for callers outside the core.
    public mutating func decode(_ captured: Span<UInt8>, wireLength: UInt32, timestampNanos: Int64) -> PacketSummary {
        captured.withUnsafeBytes { decode($0, wireLength: wireLength, timestampNanos: timestampNanos) }
    }

    /// Decodes `captured` (the `caplen` bytes libpcap handed over) of a packet
    /// whose original length was `wireLength`. Safe: callers pass a buffer that
    /// is valid for the whole call (libpcap's, until its next read).
    ///
    /// Inlined into the reader's loop with the common-case pass, so that the
    /// summary is built in registers and stored once, into the ring slot;
    /// every other packet takes one call to the general path.
    @inline(__always)
    mutating func decode(
        _ captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos: Int64
    ) -> PacketSummary {
        var s = PacketSummary()
        s.wireLength = wireLength
        s.timestampNanos = timestampNanos
        guard let base = captured.baseAddress, captured.count > 0 else {
            s.failure = .emptyRecord
            return s
        }
        // A record whose caplen exceeds its len is invalid; never read past what
        // the packet could have held on the wire.
        let usable = min(captured.count, Int(wireLength) > 0 ? Int(wireLength) : captured.count)
        let b = WireBytes(base: base, count: usable)
        if linkType == .ethernet && decodeEthernetIPv4Common(b, &s) { return s }
        decodeGeneral(b, &s)
        return s
    }

    /// The same, written over `s` in place (line for line the function
    /// above, which the replay reader keeps: its summary is built in
    /// registers): the live path decodes straight into its look-ahead slot,
    /// where a returned summary was built on the stack and copied there
    /// (perf: a store-forwarding stall on that copy).
    @inline(__always)
    mutating func decode(
        _ captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos: Int64, into s: inout PacketSummary
    ) {
        s = PacketSummary()
        s.wireLength = wireLength
        s.timestampNanos = timestampNanos
        guard let base = captured.baseAddress, captured.count > 0 else {
            s.failure = .emptyRecord
            return
        }
        // A record whose caplen exceeds its len is invalid; never read past what
        // the packet could have held on the wire.
        let usable = min(captured.count, Int(wireLength) > 0 ? Int(wireLength) : captured.count)
        let b = WireBytes(base: base, count: usable)
        if linkType == .ethernet && decodeEthernetIPv4Common(b, &s) { return }
        decodeGeneral(b, &s)
    }

    /// Every packet the common-case pass does not take, out of line so that
    /// the reader's loop stays small.
    @inline(never)
    mutating func decodeGeneral(_ b: WireBytes, _ s: inout PacketSummary) {
        decodeLink(b, &s)
    }

    /// Nearly every packet a relay sees: Ethernet, IPv4 without options or
    /// fragmentation, and a whole TCP or UDP header. Decoded in one straight
    /// pass of six loads, with what the general path would write, field for
    /// field. Returns false having written nothing for any other packet
    /// (VLAN, IPv6, options, fragments, other protocols, anything truncated
    /// or malformed), which the general path then decodes.
    @inline(__always)
    func decodeEthernetIPv4Common(_ b: WireBytes, _ s: inout PacketSummary) -> Bool {
        // 14 Ethernet + 20 IPv4 + 8 (a UDP header, the shorter of the two).
        guard b.count >= 42 else { return false }
        // Bytes 12…19: EtherType, version/IHL, TOS, total length, ID.
        let head = b.u64(12)
        // EtherType 0x0800 and version 4 with a 20-byte header.
        guard head >> 40 == 0x08_0045 else { return false }
        // Bytes 20…23: flags and fragment offset, TTL, protocol.
        let fragmentAndProto = b.u32(20)
        // Neither a later fragment (offset) nor a first one (MF): both need the fragment cache.
        guard fragmentAndProto & 0x3FFF_0000 == 0 else { return false }
        let totalLength = Int(truncatingIfNeeded: (head >> 16) & 0xFFFF)
        let ipPayload: Int
        if totalLength == 0 {
            ipPayload = max(0, Int(s.wireLength) - 34)  // segmentation offload, as in `decodeIPv4`
        } else {
            guard totalLength >= 20 else { return false }
            ipPayload = totalLength - 20
        }
        let proto = UInt8(truncatingIfNeeded: fragmentAndProto)
        let payload: Int
        var flags: UInt8 = 0
        if proto == IPProtocol.tcp.rawValue {
            guard b.count >= 54 else { return false }
            let offsetAndFlags = b.u16(46)
            let dataOffset = Int(offsetAndFlags >> 12) * 4
            guard dataOffset >= 20 else { return false }
            flags = UInt8(truncatingIfNeeded: offsetAndFlags)
            payload = ipPayload - dataOffset
        } else if proto == IPProtocol.udp.rawValue {
            payload = ipPayload - 8
        } else {
            return false
        }
        let ports = b.u32(34)
        s.family = 4
        s.proto = IPProtocol(rawValue: proto)
        s.src = IPAddress(ipv4: b.u32(26))
        s.dst = IPAddress(ipv4: b.u32(30))
        s.transportHeaderPresent = true
        s.srcPort = PortNumber(UInt16(truncatingIfNeeded: ports >> 16))
        s.dstPort = PortNumber(UInt16(truncatingIfNeeded: ports))
        s.tcpFlags = flags
        s.payloadLength = UInt32(clamping: max(0, payload))
        s.outcome = .ip
        return true
    }

    @inline(__always)
    mutating func decodeLink(_ b: WireBytes, _ s: inout PacketSummary) {
        decodeLink(b, linkType, at: 0, encapsulated: false, &s)
    }

    /// Decodes the link header of type `type` starting at `o`: the fixed-size
    /// headers from `FixedLinkHeader`'s table, then the special cases. PPI and
    /// PKTAP wrap another link header; `encapsulated` stops a second level.
    mutating func decodeLink(_ b: WireBytes, _ type: LinkType, at o: Int, encapsulated: Bool, _ s: inout PacketSummary) {
        if let header = FixedLinkHeader.of(type) { return decodeFixedLink(b, header, at: o, &s) }
        switch type {
        case .raw, .rawOpenBSD, .rawLinktype: decodeIPByVersion(b, at: o, &s)
        case .ipv4: decodeIPv4(b, at: o, &s)
        case .ipv6: decodeIPv6(b, at: o, &s)
        case .null, .loop: decodeNullOrLoop(b, type, at: o, &s)
        case .ppp, .pppHDLC: decodePPP(b, at: o, &s)
        case .frameRelay: decodeFrameRelay(b, at: o, &s)
        case .ipnet: decodeIPNET(b, at: o, &s)
        case .nflog: decodeNFLOG(b, at: o, &s)
        case .ppi, .pktap: decodeWrapper(b, type, at: o, encapsulated: encapsulated, &s)
        default: fail(&s, .linkTypeUnsupported)
        }
    }

    /// A fixed-size header with an EtherType at a fixed offset (softflowd's `lt[]`).
    @inline(__always)
    mutating func decodeFixedLink(_ b: WireBytes, _ h: FixedLinkHeader, at o: Int, _ s: inout PacketSummary) {
        guard b.count >= o + h.length else { return fail(&s, .linkHeaderTruncated) }
        switch h.packetType {
        case .none: break
        case .u16AtStart: notePacketType(b.u16(o), &s)
        case .u8AtTen: notePacketType(UInt16(b.u8(o + 10)), &s)
        }
        decodeEtherType(b, EtherType(rawValue: b.u16(o + h.etherTypeOffset)), at: o + h.length, &s)
    }

    /// Linux `PACKET_*` types: 0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing.
    @inline(__always)
    func notePacketType(_ type: UInt16, _ s: inout PacketSummary) {
        if type == 4 { s.linkSaysOutgoing = true } else if type <= 2 { s.linkSaysIncoming = true }
    }

    @inline(__always)
    mutating func decodeEtherType(_ b: WireBytes, _ first: EtherType, at start: Int, _ s: inout PacketSummary) {
        var type = first
        var offset = start
        var tags = 0
        while type.isVLANTag {
            tags += 1
            guard tags <= PacketDecoder.maxVLANDepth else { return fail(&s, .vlanTooDeep) }
            guard b.count >= offset + 4 else { return fail(&s, .vlanTruncated) }
            type = EtherType(rawValue: b.u16(offset + 2))
            offset += 4
        }
        switch type.rawValue {
        case EtherType.ipv4.rawValue:
            decodeIPv4(b, at: offset, &s)
        case EtherType.ipv6.rawValue:
            decodeIPv6(b, at: offset, &s)
        case EtherType.pppoeSession.rawValue:
            // 6-byte PPPoE header then a 2-byte PPP protocol number.
            guard b.count >= offset + 8 else { return fail(&s, .pppoeTruncated) }
            switch b.u16(offset + 6) {
            case 0x0021: decodeIPv4(b, at: offset + 8, &s)
            case 0x0057: decodeIPv6(b, at: offset + 8, &s)
            default: s.outcome = .nonIP
            }
        case 0x88E5:
            // MACsec: an integrity-only frame carries the inner EtherType in
            // clear after the SecTAG (8 bytes, 16 with the SCI); encrypted
            // (E bit) frames cannot be decoded and are non-IP.
            guard b.count >= offset + 8 else { return fail(&s, .linkHeaderTruncated) }
            let tci = b.u8(offset)
            guard tci & 0x0C == 0 else { s.outcome = .nonIP; return }  // E or C: not clear text
            let tag = tci & 0x20 != 0 ? 14 : 6  // SecTAG after its EtherType
            guard b.count >= offset + tag + 2 else { return fail(&s, .linkHeaderTruncated) }
            decodeEtherType(b, EtherType(rawValue: b.u16(offset + tag)), at: offset + tag + 2, &s)
        case 0x8847, 0x8848:
            decodeMPLS(b, at: offset, &s)
        default:
            s.outcome = .nonIP
        }
    }

    /// MPLS: pop labels to the bottom of the stack, then IP by version nibble.
    mutating func decodeMPLS(_ b: WireBytes, at start: Int, _ s: inout PacketSummary) {
        var offset = start
        var labels = 0
        while true {
            guard b.count >= offset + 4 else { return fail(&s, .linkHeaderTruncated) }
            let entry = b.u32(offset)
            offset += 4
            labels += 1
            if entry & 0x100 != 0 { break }
            guard labels < PacketDecoder.maxMPLSLabels else { return fail(&s, .vlanTooDeep) }
        }
        guard b.count > offset else { return fail(&s, .linkHeaderTruncated) }
        switch b.u8(offset) >> 4 {
        case 4: decodeIPv4(b, at: offset, &s)
        case 6: decodeIPv6(b, at: offset, &s)
        default: s.outcome = .nonIP
        }
    }

    @inline(__always)
    mutating func decodeIPByVersion(_ b: WireBytes, at offset: Int, _ s: inout PacketSummary) {
        guard b.count > offset else { return fail(&s, .ipv4Truncated) }
        switch b.u8(offset) >> 4 {
        case 4: decodeIPv4(b, at: offset, &s)
        case 6: decodeIPv6(b, at: offset, &s)
        default: fail(&s, .ipVersionInvalid)
        }
    }

    mutating func decodeIPv4(_ b: WireBytes, at o: Int, _ s: inout PacketSummary) {
        // The link layer said IPv4: counted as IPv4 even if the header is bad.
        s.family = 4
        guard b.count >= o + 20 else { return fail(&s, .ipv4Truncated) }
        let vihl = b.u8(o)
        guard vihl >> 4 == 4 else { return fail(&s, .ipVersionInvalid) }
        s.proto = IPProtocol(rawValue: b.u8(o + 9))
        s.src = IPAddress(ipv4: b.u32(o + 12))
        s.dst = IPAddress(ipv4: b.u32(o + 16))
        let headerLength = Int(vihl & 0x0F) * 4
        guard headerLength >= 20 else { return fail(&s, .ipv4HeaderLengthInvalid) }
        guard b.count >= o + headerLength else { return fail(&s, .ipv4Truncated) }
        let totalLength = Int(b.u16(o + 2))
        // Total length 0 is what segmentation offload (TSO/GSO) leaves in captures
        // taken on the sending host: fall back to the wire length.
        var ipPayload: Int
        if totalLength == 0 {
            ipPayload = max(0, Int(s.wireLength) - (o + headerLength))
        } else {
            guard totalLength >= headerLength else { return fail(&s, .ipv4TotalLengthInvalid) }
            ipPayload = totalLength - headerLength
        }
        let fragmentField = b.u16(o + 6)
        let fragmentOffset = fragmentField & 0x1FFF
        let moreFragments = fragmentField & 0x2000 != 0
        if fragmentOffset != 0 {
            let key = FragmentKey(src: s.src, dst: s.dst, id: UInt32(b.u16(o + 4)), proto: s.proto)
            resolveLaterFragment(key, payload: ipPayload, &s)
            return
        }
        let fragmentID: UInt32? = moreFragments ? UInt32(b.u16(o + 4)) : nil
        decodeTransport(b, at: o + headerLength, ipPayload: ipPayload, fragmentID: fragmentID, &s)
    }

    mutating func decodeIPv6(_ b: WireBytes, at o: Int, _ s: inout PacketSummary) {
        // Unlike IPv4, a header with the wrong version is not counted as IPv6
        // (tshark agrees); a short one with the right version is.
        guard b.count > o else { return fail(&s, .ipv6Truncated) }
        guard b.u8(o) >> 4 == 6 else { return fail(&s, .ipVersionInvalid) }
        s.family = 6
        guard b.count >= o + 40 else { return fail(&s, .ipv6Truncated) }
        s.src = IPAddress(hi: b.u64(o + 8), lo: b.u64(o + 16))
        s.dst = IPAddress(hi: b.u64(o + 24), lo: b.u64(o + 32))
        let payloadField = Int(b.u16(o + 4))
        // Payload length 0 means a jumbogram or offload: use the wire length.
        var remaining = payloadField != 0 ? payloadField : max(0, Int(s.wireLength) - (o + 40))
        var next = IPProtocol(rawValue: b.u8(o + 6))
        var offset = o + 40
        var extensions = 0
        var fragmentID: UInt32? = nil
        while true {
            s.proto = next
            let length: Int
            switch next.rawValue {
            case 0, 43, 60, 135, 139, 140:  // hop-by-hop, routing, dest opts, mobility, HIP, shim6
                guard b.count >= offset + 2 else { return fail(&s, .ipv6ExtensionTruncated) }
                length = (Int(b.u8(offset + 1)) + 1) * 8
            case 44:  // fragment
                guard b.count >= offset + 8 else { return fail(&s, .ipv6ExtensionTruncated) }
                length = 8
                let field = b.u16(offset + 2)
                let id = b.u32(offset + 4)
                if field & 0xFFF8 != 0 {
                    // A later fragment: the transport header is in the first one.
                    let key = FragmentKey(src: s.src, dst: s.dst, id: id, proto: IPProtocol(rawValue: b.u8(offset)))
                    s.proto = key.proto
                    resolveLaterFragment(key, payload: max(0, remaining - 8), &s)
                    return
                }
                if field & 1 != 0 { fragmentID = id }
            case 51:  // AH: length in 4-byte units, minus 2
                guard b.count >= offset + 2 else { return fail(&s, .ipv6ExtensionTruncated) }
                length = (Int(b.u8(offset + 1)) + 2) * 4
            default:
                decodeTransport(b, at: offset, ipPayload: max(0, remaining), fragmentID: fragmentID, &s)
                return
            }
            extensions += 1
            guard extensions <= PacketDecoder.maxIPv6Extensions else { return fail(&s, .ipv6ExtensionChainTooLong) }
            guard b.count >= offset + length else { return fail(&s, .ipv6ExtensionTruncated) }
            next = IPProtocol(rawValue: b.u8(offset))
            offset += length
            remaining -= length
        }
    }

    @inline(__always)
    mutating func decodeTransport(
        _ b: WireBytes, at o: Int, ipPayload: Int, fragmentID: UInt32?, _ s: inout PacketSummary
    ) {
        s.transportHeaderPresent = true
        switch s.proto.rawValue {
        case IPProtocol.tcp.rawValue:
            guard b.count >= o + 20 else { return fail(&s, .tcpTruncated) }
            s.srcPort = PortNumber(b.u16(o))
            s.dstPort = PortNumber(b.u16(o + 2))
            let dataOffset = Int(b.u8(o + 12) >> 4) * 4
            guard dataOffset >= 20 else { return fail(&s, .tcpHeaderLengthInvalid) }
            s.tcpFlags = b.u8(o + 13)
            s.payloadLength = UInt32(clamping: max(0, ipPayload - dataOffset))
        case IPProtocol.udp.rawValue:
            guard b.count >= o + 8 else { return fail(&s, .udpTruncated) }
            s.srcPort = PortNumber(b.u16(o))
            s.dstPort = PortNumber(b.u16(o + 2))
            s.payloadLength = UInt32(clamping: max(0, ipPayload - 8))
        default:
            s.payloadLength = UInt32(clamping: ipPayload)
        }
        s.outcome = .ip
        if let id = fragmentID, s.hasPorts {
            fragments.remember(FragmentKey(src: s.src, dst: s.dst, id: id, proto: s.proto),
                               srcPort: s.srcPort, dstPort: s.dstPort, at: s.timestampNanos)
        }
    }

    @inline(__always)
    mutating func resolveLaterFragment(_ key: FragmentKey, payload: Int, _ s: inout PacketSummary) {
        s.payloadLength = UInt32(clamping: payload)
        guard key.proto == .tcp || key.proto == .udp else {
            s.outcome = .ip  // no ports needed to classify by address
            return
        }
        if let ports = fragments.lookup(key, at: s.timestampNanos) {
            s.srcPort = ports.src
            s.dstPort = ports.dst
            s.outcome = .ip
        } else {
            fail(&s, .fragmentFirstNotSeen)
        }
    }

    @inline(__always)
    func fail(_ s: inout PacketSummary, _ reason: DecodeFailure) {
        s.outcome = .failed
        s.failure = reason
    }
}
