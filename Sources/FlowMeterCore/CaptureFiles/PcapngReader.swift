// Kept whole: one reader's private state (buffer, byte order, interfaces)
// is shared by every part below, and Swift's `private` ends at the file.
import CPcapShim
#if canImport(Glibc)
import Glibc
#endif

/// Reads the blocks of a pcapng file straight out of one buffer, for replay,
/// decoding each record with the link type of ITS interface.
///
/// Why not libpcap: libpcap (1.10) gives a pcapng file one link type, that of
/// its first Interface Description Block, and stops reading at the
/// description of an interface of another link type or at a section in the
/// other byte order (PcapngLinkTypes.swift). A capture from `any` or from
/// two kinds of interface has both; this reader counts every record.
///
/// How: as `BufferedPcapReader`, `pread(2)` on libpcap's descriptor into one
/// buffer (grown only for a block larger than it), each block parsed in
/// place. libpcap still opens the file and checks its first section and first
/// interface; this reader then reads from the file's start.
///
/// What it follows, as libpcap 1.10.3's sf-pcapng.c does for a file of one
/// link type, so that such a file counts identically through either reader
/// (the corpus test holds every pcapng file of Tests/Corpus/pcap to it):
/// - every block: total length at least 12, a multiple of 4, at most the
///   maximum block size, whole in the file, the trailer's length equal;
///   anything else ends reading as damaged with libpcap's message, after the
///   records before it were counted;
/// - Section Header Block: its own byte order (a later one may differ: the
///   difference from libpcap), major version 1, and a new, empty interface list;
/// - Interface Description Block: link type (LINKTYPE_ value, as DLT_),
///   snapshot (0 or above 2^31-1 meaning the link type's maximum),
///   `if_tsresol` (powers of 10 up to 10^-19 and of 2 up to 2^-63; default
///   µs) and `if_tsoffset` (seconds added), each at most once;
/// - Enhanced Packet Block and the obsolete Packet Block: interface, 64-bit
///   timestamp, captured length (at most the interface's snapshot and the
///   block's data) and original length;
/// - Simple Packet Block: interface 0, its original length, captured length
///   the smaller of that and the snapshot, no timestamp (only the offset);
/// - other blocks (name resolution, statistics, custom...): skipped.
///
/// What stays with libpcap: pipes and other files that cannot be read at an
/// offset, and files whose first interface has a link type whose records
/// libpcap rewrites (`BufferedPcapReader.rewrittenAlways`, `rewrittenWhenSwapped`).
/// Records of such a link type on a LATER interface are decoded as they are
/// in the file (libpcap could not read past that interface anyway).
///
/// Invariants: `0 <= start <= end <= capacity`; the buffer's bytes
/// `start..<end` are the file's bytes `endOffset - (end - start) ..< endOffset`;
/// the block at `start` is the next one to read.
final class PcapngReader {
    static let shbType: UInt32 = 0x0A0D_0D0A
    static let idbType: UInt32 = 1
    static let pbType: UInt32 = 2
    static let spbType: UInt32 = 3
    static let epbType: UInt32 = 6
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    /// How one interface's timestamps become nanoseconds: libpcap's
    /// arithmetic (64-bit, wrapping) with the nanosecond precision FlowMeter
    /// opens files with.
    struct Clock {
        enum Scale { case none, multiply(UInt64), divide(UInt64), binary }
        /// Units per second (`if_tsresol`).
        var resolution: UInt64 = 1_000_000
        var scale = Scale.multiply(1000)
        /// `if_tsoffset`, as libpcap adds it: to the seconds, wrapping.
        var offset: UInt64 = 0

        init() {}
        init(resolution: UInt64, binary: Bool, offset: Int64) {
            self.resolution = resolution
            self.offset = UInt64(bitPattern: offset)
            let wanted: UInt64 = 1_000_000_000
            if resolution == wanted {
                scale = .none
            } else if binary {
                scale = .binary
            } else if resolution > wanted {
                scale = .divide(resolution / wanted)
            } else {
                scale = .multiply(wanted / resolution)
            }
        }

        /// The timestamp `t` (in `resolution` units) in nanoseconds, as
        /// `OfflineCapture.deliver` computes it from libpcap's `timeval`.
        @inline(__always)
        func nanos(_ t: UInt64) -> Int64 {
            var seconds: UInt64, fraction: UInt64
            if resolution == 1_000_000 {
                // The default, and dumpcap's: divided by a constant.
                seconds = t / 1_000_000
                fraction = (t % 1_000_000) &* 1000
            } else {
                seconds = t / resolution
                fraction = t % resolution
                switch scale {
                case .none: break
                case .multiply(let k): fraction = fraction &* k
                case .divide(let k): fraction /= k
                case .binary: fraction = (fraction &* 1_000_000_000) / resolution
                }
            }
            seconds = seconds &+ offset
            // libpcap stores the seconds in a time_t and the fraction in an int.
            let sec = OfflineCapture.unsigned(Int(Int64(bitPattern: seconds)))
            return OfflineCapture.instant(seconds: sec, nanos: Int64(Int32(truncatingIfNeeded: fraction)))
        }
    }

    struct Interface {
        var linkType: LinkType
        var snapshot: UInt32
        var clock: Clock
        /// Whether the decoder knows `linkType`; if not, what it refused is counted here.
        var decoded: Bool
        var unsupportedPackets: UInt64 = 0
        var unsupportedBytes: UInt64 = 0
    }

    /// Why `readBlocks` returned.
    enum Stop {
        case limit, end
        /// A section header in the other byte order is next: read on in that order.
        case orderChanged
        case damaged(String)
        /// The file's first interface is not what libpcap made of it: libpcap reads the file.
        case handOver
    }

    let fd: Int32
    private(set) var capacity: Int
    private var storage: UnsafeMutableRawPointer?
    var start = 0
    var end = 0
    var endOffset: Int64 = 0
    /// The current section was written in the other byte order.
    private(set) var swapped = false
    private var atFileStart = true
    private var sawFirstInterface = false
    /// Whether this reader met what libpcap 1.10 stops at: an interface whose
    /// link type or snapshot differs from the first's (by libpcap's own test,
    /// which compares the first's DLT_ with the later one's LINKTYPE_), or a
    /// section in the other byte order. Until then both read alike.
    private(set) var beyondLibpcap = false
    /// The current section's interfaces (a new section starts a new list).
    private(set) var interfaces: [Interface] = []
    /// What earlier sections' interfaces of an undecoded link type counted.
    private var unsupportedEarlier: [(LinkType, packets: UInt64, bytes: UInt64)] = []
    /// libpcap's view of the first interface, checked when this reader meets it.
    let firstLinkType: LinkType
    let firstSnapshot: UInt32
    /// libpcap's largest block (16 MiB, more for link types with larger packets).
    let maxBlockSize: UInt32

    /// The file offset of the next block.
    var consumedOffset: Int64 { endOffset - Int64(end - start) }

    /// A reader for the pcapng file behind `handle` (whose first interface
    /// libpcap found to be of `linkType`), nil when libpcap must read it.
    init?(eligible handle: OpaquePointer, linkType: LinkType, capacity: Int) {
        guard let file = pcap_file(handle) else { return nil }
        let fd = fileno(file)
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        var magic: UInt32 = 0
        // Safe: reads at most 4 bytes into the 4-byte `magic`.
        guard pread(fd, &magic, 4, 0) == 4, magic == Self.shbType else { return nil }
        let dlt = linkType.rawValue
        let swapped = pcap_is_swapped(handle) == 1
        if BufferedPcapReader.rewrittenAlways.contains(dlt)
            || (swapped && BufferedPcapReader.rewrittenWhenSwapped.contains(dlt)) { return nil }
        let snapshot = pcap_snapshot(handle)
        guard snapshot > 0 else { return nil }
        self.fd = fd
        self.capacity = max(capacity, 64)
        firstLinkType = linkType
        firstSnapshot = UInt32(snapshot)
        // sf-pcapng.c: MAX_BLOCKSIZE_FOR_SNAPLEN of the first link type, at least 16 MiB.
        maxBlockSize = max(16 << 20, 8 + 20 + Self.maxSnapshot(dlt) + 131_072 + 4)
    }

    deinit { storage?.deallocate() }

    /// libpcap's `max_snaplen_for_dlt`.
    static func maxSnapshot(_ dlt: Int32) -> UInt32 {
        switch dlt {
        case 231: 128 << 20  // DBUS
        case 279: 8 << 20    // EBHSCR
        case 249: 1 << 20    // USBPCAP
        default: 262_144
        }
    }

    /// The buffer, allocated the first time it is needed.
    func buffer() -> UnsafeMutableRawPointer {
        if let storage { return storage }
        let b = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        storage = b
        return b
    }

    enum Fill { case ready, short, failed(Int32) }

    /// Makes the buffer hold at least `n` bytes from `start`: moves the unread
    /// tail to its start, grows it if `n` is larger (a large block: not per
    /// record), and reads until `n` bytes are there or the file ends.
    func ensure(_ n: Int) -> Fill {
        precondition(n >= 0 && n <= Int(maxBlockSize), "a block is checked against the maximum before it is read")
        var base = buffer()
        while end - start < n {
            if start + n > capacity {
                let tail = end - start
                if n > capacity {
                    let grown = max(n, min(capacity * 2, Int(maxBlockSize)))
                    let b = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 64)
                    // Safe: `tail` bytes lie at base + start (start + tail == end <= capacity) and fit the new buffer (tail < n <= grown).
                    if tail > 0 { b.copyMemory(from: base + start, byteCount: tail) }
                    base.deallocate()
                    storage = b
                    base = b
                    capacity = grown
                } else if tail > 0 {
                    // Safe: both ranges lie inside the buffer (start + tail == end <= capacity); memmove allows overlap.
                    memmove(base, base + start, tail)
                }
                start = 0
                end = tail
            }
            assert(end < capacity)
            // Safe: writes at most capacity - end bytes after base + end.
            let got = pread(fd, base + end, capacity - end, off_t(endOffset))
            if got > 0 {
                end += got
                endOffset += Int64(got)
            } else if got == 0 {
                return .short
            } else if errno != EINTR {
                return .failed(errno)
            }
        }
        return .ready
    }

    /// Stops at a damaged block with libpcap's `message`, leaving the file
    /// position where libpcap's would be (`bytesConsumed` is the same).
    private func damaged(_ message: String, continuingAt offset: Int64) -> Stop {
        start = 0
        end = 0
        endOffset = offset
        return .damaged(message)
    }

    private func tooShort(_ type: UInt32, blockEnd: Int64) -> Stop {
        damaged("block of type \(type) in pcapng dump file is too short", continuingAt: blockEnd)
    }

    /// A 16-bit field of the current section. `offset + 2` must lie within the
    /// block at `p`, whose length the caller checked (`size`, asserted).
    @inline(__always)
    private func u16(_ p: UnsafeRawPointer, _ offset: Int, within size: Int) -> UInt16 {
        assert(offset >= 0 && offset + 2 <= size, "field read past the block")
        // Safe: within the block's `size` bytes, which lie at `p` (the caller's check, asserted above).
        let v = p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return swapped ? v.byteSwapped : v
    }

    /// Every record of undecoded link types counted so far, per link type.
    var unsupportedLinkTypes: [UnsupportedLinkType] {
        var out: [UnsupportedLinkType] = []
        let current = interfaces.filter { !$0.decoded }.map { ($0.linkType, packets: $0.unsupportedPackets, bytes: $0.unsupportedBytes) }
        for (lt, packets, bytes) in unsupportedEarlier + current where packets > 0 {
            if let i = out.firstIndex(where: { $0.linkType == lt.rawValue }) {
                out[i].packets += packets
                out[i].bytes += bytes
            } else {
                out.append(UnsupportedLinkType(linkType: lt.rawValue, name: lt.pcapName, packets: packets, bytes: bytes))
            }
        }
        return out
    }

    // Kept whole: an IDB's fixed fields and options in libpcap's order, so
    // every message it returns is libpcap's own for the same block.
    /// Reads an Interface Description Block of `length` bytes at `block`
    /// into the interface list; libpcap's message if it is malformed.
    private func addInterface(_ block: UnsafeRawPointer, length: Int) -> String? {
        // Block header 8, link type 2, reserved 2, snapshot 4; trailer 4.
        guard length - 12 >= 8 else { return "block of type 1 in pcapng dump file is too short" }
        let raw = u16(block, 8, within: length)
        // Safe: bytes 12..<16 lie in the block (its body holds at least the 8 fixed bytes, checked above).
        let rawSnapshot = swapped ? block.loadUnaligned(fromByteOffset: 12, as: UInt32.self).byteSwapped
            : block.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
        // pcap-common.c `linktype_to_dlt`, then savefile.c `pcap_adjust_snapshot` (1.10): only 0 or above
        // INT_MAX becomes the link type's maximum; a snapshot between the two stands (found by the fuzz target).
        let dlt = OfflineCapture.linkTypeToDLT[Int32(raw)] ?? Int32(raw)
        let snapshot = rawSnapshot == 0 || rawSnapshot > UInt32(Int32.max) ? Self.maxSnapshot(dlt) : rawSnapshot
        if sawFirstInterface && (Int32(raw) != firstLinkType.rawValue || snapshot != firstSnapshot) { beyondLibpcap = true }
        var resolution: UInt64 = 1_000_000, binary = false, offset: Int64 = 0
        var sawResolution = false, sawOffset = false
        var o = 16
        var remaining = length - 12 - 8
        options: while remaining != 0 {
            guard remaining >= 4 else { return "block of type 1 in pcapng dump file is too short" }
            let code = u16(block, o, within: length - 4), optionLength = u16(block, o + 2, within: length - 4)
            let padded = (Int(optionLength) + 3) & ~3
            remaining -= 4
            guard remaining >= padded else { return "block of type 1 in pcapng dump file is too short" }
            let value = o + 4
            // Safe (the loads below): the option's `optionLength` bytes lie in the block before its trailer (checked just above).
            assert(value + padded <= length - 4, "option read past the block")
            remaining -= padded
            o = value + padded
            switch code {
            case 0:
                guard optionLength == 0 else {
                    return "Interface Description Block has opt_endofopt option with length \(optionLength) != 0"
                }
                break options
            case 9:
                guard optionLength == 1 else {
                    return "Interface Description Block has if_tsresol option with length \(optionLength) != 1"
                }
                guard !sawResolution else { return "Interface Description Block has more than one if_tsresol option" }
                sawResolution = true
                let v = block.load(fromByteOffset: value, as: UInt8.self)
                if v & 0x80 != 0 {
                    let shift = v & 0x7F
                    guard shift <= 63 else {
                        return "Interface Description Block if_tsresol option resolution 2^-\(shift) is too high"
                    }
                    binary = true
                    resolution = 1 << UInt64(shift)
                } else {
                    guard v <= 19 else {
                        return "Interface Description Block if_tsresol option resolution 10^-\(v) is too high"
                    }
                    binary = false
                    resolution = 1
                    for _ in 0..<v { resolution &*= 10 }
                }
            case 14:
                guard optionLength == 8 else {
                    return "Interface Description Block has if_tsoffset option with length \(optionLength) != 8"
                }
                guard !sawOffset else { return "Interface Description Block has more than one if_tsoffset option" }
                sawOffset = true
                let v = block.loadUnaligned(fromByteOffset: value, as: Int64.self)
                offset = swapped ? v.byteSwapped : v
            default:
                break
            }
        }
        let linkType = LinkType(rawValue: dlt)
        interfaces.append(Interface(linkType: linkType, snapshot: snapshot,
                                    clock: Clock(resolution: resolution, binary: binary, offset: offset),
                                    decoded: linkType.isDecoded))
        return nil
    }

    /// A new section: its interfaces start afresh.
    private func newSection() {
        for i in interfaces where !i.decoded && i.unsupportedPackets > 0 {
            unsupportedEarlier.append((i.linkType, packets: i.unsupportedPackets, bytes: i.unsupportedBytes))
        }
        interfaces.removeAll(keepingCapacity: true)
    }

    // Kept whole: the block loop every pcapng record passes through; a split
    // would put the cursor and the section's state behind a call per record.
    /// Reads blocks of the current section (byte order `O`) until the limit,
    /// the end, damage, or a section in the other byte order.
    func readBlocks<S: PacketSink, O: PcapRecordOrder>(
        _ capture: OfflineCapture, _: O.Type, totals: inout ReadTotals, into sink: inout S,
        decoder: inout PacketDecoder, limit: UInt64, progress: ((OfflineCapture, ReadTotals) -> Void)?
    ) -> Stop {
        let progressMask: UInt64 = (1 << 20) - 1
        while totals.packets < limit {
            let blockStart = consumedOffset
            // The block header: type and total length.
            if end - start < 12 {
                switch ensure(12) {
                case .ready: break
                case .short:
                    let have = end - start
                    if have == 0 { return .end }
                    if have < 8 {
                        return damaged("truncated pcapng dump file; tried to read 8 bytes, only got \(have)",
                                       continuingAt: endOffset)
                    }
                case .failed(let e):
                    return damaged("error reading dump file: " + String(cString: strerror(e)), continuingAt: blockStart)
                }
            }
            // Fetched again for each block: `ensure` may have moved the buffer (a large block).
            var base = UnsafeRawPointer(buffer())
            // Safe: at least 8 bytes (the block header) lie at base + start (ensured just above).
            assert(end - start >= 8, "block header read past the buffer")
            var block = base + start
            let type = O.field(block, 0)
            if type == Self.shbType && end - start >= 12 {
                // A section says its byte order itself, in the magic after its header.
                // Safe: 12 bytes lie at `block` (the condition just above).
                let magic = block.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
                let order: Bool? = magic == Self.byteOrderMagic ? false
                    : magic == Self.byteOrderMagic.byteSwapped ? true : nil
                if let order, order != swapped {
                    if !atFileStart { beyondLibpcap = true }
                    swapped = order
                    return .orderChanged
                }
            }
            let length32 = O.field(block, 4)
            if atFileStart {
                // libpcap's open checked the first section (12 + 16 bytes at least, at most 1 MiB,
                // version 1.0 or 1.2) and read it without its trailer: so does this reader.
                atFileStart = false
                let length = Int(length32)
                guard type == Self.shbType, length >= 28, length <= 1 << 20 else { return .handOver }
                if end - start < length {
                    guard case .ready = ensure(length) else { return .handOver }
                }
                start += length
                newSection()
                continue
            }
            guard length32 >= 12 else {
                return damaged("block in pcapng dump file has a length of \(length32) < 12", continuingAt: blockStart + 8)
            }
            guard length32 % 4 == 0 else {
                return damaged("block in pcapng dump file has a length of \(length32) that is not a multiple of 4",
                               continuingAt: blockStart + 8)
            }
            guard length32 <= maxBlockSize else {
                return damaged("pcapng block size \(length32) > maximum \(maxBlockSize)", continuingAt: blockStart + 8)
            }
            let length = Int(length32)
            if end - start < length {
                switch ensure(length) {
                case .ready: break
                case .short:
                    return damaged("truncated pcapng dump file; tried to read \(length - 8) bytes, only got \(end - start - 8)",
                                   continuingAt: endOffset)
                case .failed(let e):
                    return damaged("error reading dump file: " + String(cString: strerror(e)), continuingAt: blockStart)
                }
                base = UnsafeRawPointer(buffer())
                block = base + start
            }
            // Safe (every load below): the whole block, `length` bytes, lies at `block` (ensured just above);
            // each field's offset is checked against the block's body (length - 12) first.
            assert(start + length <= end)
            let blockEnd = blockStart + Int64(length)
            guard O.field(block, length - 4) == length32 else {
                return damaged("block total length in header and trailer don't match", continuingAt: blockEnd)
            }
            let body = length - 12
            var caplen: UInt32, wire: UInt32, interface: Int, data: Int, timestamp: UInt64
            switch type {
            case Self.epbType:
                guard body >= 20 else { return tooShort(type, blockEnd: blockEnd) }
                interface = Int(O.field(block, 8))
                timestamp = UInt64(O.field(block, 12)) << 32 | UInt64(O.field(block, 16))
                caplen = O.field(block, 20)
                wire = O.field(block, 24)
                data = 28
            case Self.spbType:
                guard body >= 4 else { return tooShort(type, blockEnd: blockEnd) }
                interface = 0
                wire = O.field(block, 8)
                caplen = interfaces.isEmpty ? wire : min(wire, interfaces[0].snapshot)
                timestamp = 0
                data = 12
            case Self.pbType:
                guard body >= 20 else { return tooShort(type, blockEnd: blockEnd) }
                interface = Int(u16(block, 8, within: length))
                timestamp = UInt64(O.field(block, 12)) << 32 | UInt64(O.field(block, 16))
                caplen = O.field(block, 20)
                wire = O.field(block, 24)
                data = 28
            case Self.idbType:
                if let message = addInterface(block, length: length) {
                    return damaged(message, continuingAt: blockEnd)
                }
                if !sawFirstInterface {
                    sawFirstInterface = true
                    let first = interfaces[interfaces.count - 1]
                    // Not what libpcap made of it: libpcap reads on from the end of this block, where its open stopped.
                    if first.linkType != firstLinkType || first.snapshot != firstSnapshot { return .handOver }
                }
                start += length
                continue
            case Self.shbType where !sawFirstInterface:
                // Before the file's first interface libpcap's open skips a section header like any other block.
                start += length
                continue
            case Self.shbType:
                guard body >= 16 else { return tooShort(type, blockEnd: blockEnd) }
                let magic = O.field(block, 8)
                guard magic == Self.byteOrderMagic else {
                    return damaged("the file has a section with a bad byte order magic field", continuingAt: blockEnd)
                }
                let major = u16(block, 12, within: length)
                guard major == 1 else {
                    return damaged("unknown pcapng savefile major version number \(major)", continuingAt: blockEnd)
                }
                newSection()
                start += length
                continue
            default:
                start += length
                continue
            }
            guard interface < interfaces.count else {
                return damaged("a packet arrived on interface \(interface), but there's no Interface Description Block "
                               + "for that interface", continuingAt: blockEnd)
            }
            let i = interfaces[interface]
            guard caplen <= i.snapshot else {
                return damaged("invalid packet capture length \(caplen), bigger than snaplen of \(i.snapshot)",
                               continuingAt: blockEnd)
            }
            guard Int(caplen) <= body - (data - 8) else { return tooShort(type, blockEnd: blockEnd) }
            if decoder.linkType != i.linkType { decoder.linkType = i.linkType }
            // Safe: the record's caplen bytes lie in the block at `data` (checked just above) and stay in the buffer until
            // the next `ensure`, after this call.
            let summary = OfflineCapture.deliver(block + data, caplen: caplen, wire: wire,
                                                 timestampNanos: i.clock.nanos(timestamp),
                                                 totals: &totals, decoder: &decoder, sink: &sink)
            if !i.decoded && summary.outcome == .failed && summary.failure == .linkTypeUnsupported {
                interfaces[interface].unsupportedPackets &+= 1
                interfaces[interface].unsupportedBytes &+= UInt64(wire)
            }
            start += length
            if let progress, totals.packets & progressMask == 0 { progress(capture, totals) }
        }
        return .limit
    }
}

extension OfflineCapture {
    /// `read` through the pcapng reader. Same contract, same bookkeeping
    /// (`deliver`), same errors; nil when the reader hands the file back to
    /// libpcap (before any record).
    func readPcapng<S: PacketSink>(
        _ reader: PcapngReader, into sink: inout S, decoder: inout PacketDecoder,
        limit: UInt64, progress: ((OfflineCapture, ReadTotals) -> Void)?
    ) throws(CaptureError) -> ReadTotals? {
        var totals = ReadTotals()
        while true {
            // Two specializations, so the per-field byte-order choice is made once per section.
            let stop = reader.swapped
                ? reader.readBlocks(self, SwappedRecordOrder.self, totals: &totals, into: &sink, decoder: &decoder,
                                    limit: limit, progress: progress)
                : reader.readBlocks(self, HostRecordOrder.self, totals: &totals, into: &sink, decoder: &decoder,
                                    limit: limit, progress: progress)
            switch stop {
            case .orderChanged: continue
            case .limit, .end: return finish(totals)
            case .damaged(let message): throw damaged(totals, message)
            case .handOver:
                precondition(totals.packets == 0, "the pcapng reader hands a file back only before its first record")
                return nil
            }
        }
    }
}
