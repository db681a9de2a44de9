import FlowMeterCore

/// The packet decoder on arbitrary bytes, as each link type it knows: it must
/// count every input under some outcome and never read past the buffer
/// (AddressSanitizer) or trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    // The first byte picks the link type; the rest is the frame.
    let linkTypes: [Int32] = [1, 0, 12, 101, 113, 276, 228, 229, 105, 127, 239]
    let linkType = LinkType(rawValue: linkTypes[Int(data[0]) % linkTypes.count])
    var decoder = PacketDecoder(linkType: linkType, fragmentCacheSlots: 16)
    // The public entry point takes a Span (the decoder's safe API).
    let frame = UnsafeBufferPointer(start: data + 1, count: size - 1).span
    let wire = UInt32(truncatingIfNeeded: size - 1) &+ UInt32(data[0] & 0x7)
    _ = decoder.decode(frame, wireLength: wire, timestampNanos: 1_700_000_000_000_000_000)
    // Twice through the same decoder: fragment state carried between packets.
    _ = decoder.decode(frame, wireLength: wire, timestampNanos: 1_700_000_000_000_000_001)
    return 0
}
