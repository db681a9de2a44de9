// The link layers other than Ethernet and Linux cooked capture: rarer in
// practice, kept apart so the decoder's common path reads on one page.

extension PacketDecoder {
    /// NULL stores the address family in the capturing host's byte order, LOOP
    /// in network order; either order is accepted for both.
    mutating func decodeNullOrLoop(_ b: WireBytes, _ type: LinkType, at o: Int, _ s: inout PacketSummary) {
        guard b.count >= o + 4 else { return fail(&s, .linkHeaderTruncated) }
        var family = type == .loop ? b.u32(o) : b.u32LittleEndian(o)
        if family > 0xFFFF { family = family.byteSwapped }
        switch family {
        case 2: decodeIPv4(b, at: o + 4, &s)
        case 10, 24, 28, 30: decodeIPv6(b, at: o + 4, &s)  // AF_INET6 of Linux, BSDs, macOS
        default: s.outcome = .nonIP
        }
    }

    /// PPP, with or without the HDLC address/control bytes.
    mutating func decodePPP(_ b: WireBytes, at o: Int, _ s: inout PacketSummary) {
        guard b.count >= o + 2 else { return fail(&s, .linkHeaderTruncated) }
        var offset = o
        if b.u8(o) == 0xFF && b.u8(o + 1) == 0x03 { offset += 2 }
        decodePPPProtocol(b, at: offset, &s)
    }

    /// Q.922 address (2 bytes), UI control 0x03, optional pad, NLPID
    /// (RFC 2427); Cisco's encapsulation puts an EtherType after the address.
    mutating func decodeFrameRelay(_ b: WireBytes, at o: Int, _ s: inout PacketSummary) {
        guard b.count >= o + 4 else { return fail(&s, .linkHeaderTruncated) }
        if b.u8(o + 2) != 0x03 {
            return decodeEtherType(b, EtherType(rawValue: b.u16(o + 2)), at: o + 4, &s)
        }
        var offset = o + 3
        if b.u8(offset) == 0x00 { offset += 1 }
        guard b.count > offset else { return fail(&s, .linkHeaderTruncated) }
        switch b.u8(offset) {
        case 0xCC: decodeIPv4(b, at: offset + 1, &s)
        case 0x8E: decodeIPv6(b, at: offset + 1, &s)
        case 0x80:  // SNAP: 3-byte OUI, 2-byte EtherType
            guard b.count >= offset + 6 else { return fail(&s, .linkHeaderTruncated) }
            decodeEtherType(b, EtherType(rawValue: b.u16(offset + 4)), at: offset + 6, &s)
        default: s.outcome = .nonIP
        }
    }

    /// Solaris IPNET: a 24-byte header whose second byte is the family.
    mutating func decodeIPNET(_ b: WireBytes, at o: Int, _ s: inout PacketSummary) {
        guard b.count >= o + 24 else { return fail(&s, .linkHeaderTruncated) }
        switch b.u8(o + 1) {
        case 2: decodeIPv4(b, at: o + 24, &s)
        case 26: decodeIPv6(b, at: o + 24, &s)
        default: s.outcome = .nonIP
        }
    }

    /// PPI and PKTAP carry their own header length and the inner link type,
    /// little-endian; one level of wrapping only.
    mutating func decodeWrapper(_ b: WireBytes, _ type: LinkType, at o: Int, encapsulated: Bool, _ s: inout PacketSummary) {
        guard !encapsulated else { return fail(&s, .linkTypeUnsupported) }
        guard b.count >= o + 8 else { return fail(&s, .linkHeaderTruncated) }
        let length = type == .ppi ? Int(b.u16(o + 2).byteSwapped) : Int(b.u32LittleEndian(o))
        let inner = LinkType(rawValue: Int32(bitPattern: b.u32LittleEndian(o + 4)))
        guard length >= 8, b.count >= o + length else { return fail(&s, .linkHeaderTruncated) }
        decodeLink(b, inner, at: o + length, encapsulated: true, &s)
    }

    /// A PPP protocol field (1 byte when compressed, else 2).
    @inline(__always)
    mutating func decodePPPProtocol(_ b: WireBytes, at o: Int, _ s: inout PacketSummary) {
        guard b.count > o else { return fail(&s, .linkHeaderTruncated) }
        var proto = UInt16(b.u8(o))
        var offset = o + 1
        if proto & 1 == 0 {
            guard b.count >= o + 2 else { return fail(&s, .linkHeaderTruncated) }
            proto = b.u16(o)
            offset = o + 2
        }
        switch proto {
        case 0x21: decodeIPv4(b, at: offset, &s)
        case 0x57: decodeIPv6(b, at: offset, &s)
        case 0x0281, 0x0283: decodeMPLS(b, at: offset, &s)
        default: s.outcome = .nonIP
        }
    }

    /// Linux NFLOG: 4-byte header, then TLVs (length and type little-endian,
    /// padded to 4); the packet is in the NFULA_PAYLOAD (type 9) TLV.
    mutating func decodeNFLOG(_ b: WireBytes, at o: Int, _ s: inout PacketSummary) {
        guard b.count >= o + 4 else { return fail(&s, .linkHeaderTruncated) }
        let family = b.u8(o)
        var offset = o + 4
        for _ in 0..<64 {
            guard b.count >= offset + 4 else { return fail(&s, .linkHeaderTruncated) }
            let length = Int(b.u16(offset).byteSwapped)
            let tlvType = b.u16(offset + 2).byteSwapped & 0x7FFF
            guard length >= 4 else { return fail(&s, .linkHeaderTruncated) }
            if tlvType == 9 {
                switch family {
                case 2: return decodeIPv4(b, at: offset + 4, &s)
                case 10: return decodeIPv6(b, at: offset + 4, &s)
                default: s.outcome = .nonIP; return
                }
            }
            offset += (length + 3) & ~3
        }
        fail(&s, .linkHeaderTruncated)
    }
}
