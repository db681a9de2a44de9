import CPcapShim
#if canImport(Glibc)
import Glibc
#endif

/// Reads the records of a classic pcap file straight out of one large buffer,
/// for replay.
///
/// Why not libpcap for every record: `pcap_next_ex` spends nearly all of the
/// floor's cost in its two `fread`s per record; reading in place costs a few
/// bounds checks and loads (BENCHMARKS.md, "Measurements behind the design").
///
/// How: `pread(2)` into one buffer allocated once per file (on the first read),
/// record headers parsed in place, and a record that crosses the buffer's end
/// moved to its start before the next read. Not `mmap`: a file truncated by
/// another process while mapped would raise SIGBUS, and a replay never crashes.
/// `pread` on libpcap's own descriptor reads the very file libpcap validated
/// and leaves its stream position alone.
///
/// What stays with libpcap: opening the file and checking its header; every
/// file that is not classic pcap 2.4 (µs or ns magic, either byte order) in a
/// regular file, or whose link type libpcap rewrites on reading (see
/// `init(eligible:capacity:)`); and every record that is not plainly whole and
/// within the snapshot (a header or data cut short, caplen above the snapshot,
/// a read error). libpcap is positioned on such a record and reads it, so its
/// rules and its messages apply unchanged: caplen above the link type's maximum
/// is an error, caplen above the snapshot is cut to it, a short read names the
/// byte counts.
///
/// Invariants: `0 <= start <= end <= capacity`; the buffer's bytes
/// `start..<end` are the file's bytes `endOffset - (end - start) ..< endOffset`;
/// the record at `start` is the next one to deliver.
final class BufferedPcapReader {
    /// Large enough that one `pread` costs nothing per packet (thousands of
    /// SYN records, hundreds of full frames per call); small enough that the
    /// copy ends long before a worker drains its ring, so no worker waits on
    /// a refill.
    static let defaultCapacity = 512 << 10
    /// `struct pcap_file_header`: the records start after it.
    static let fileHeaderSize: Int64 = 24
    /// `struct pcap_sf_pkthdr`: seconds, fraction, caplen, len; 32 bits each.
    static let recordHeaderSize = 16

    let fd: Int32
    let capacity: Int
    /// libpcap's snapshot for the file (never above the link type's maximum).
    let snapshot: UInt32
    /// The file was written in the other byte order.
    let swapped: Bool
    /// Nanoseconds per unit of the timestamp's fraction field: 1000 for µs files.
    let fractionScale: Int64
    /// Fraction fields at or above this are impossible (10^6 µs, 10^9 ns).
    var fractionLimit: UInt32 { fractionScale == 1 ? 1_000_000_000 : 1_000_000 }
    private var storage: UnsafeMutableRawPointer?
    var start = 0
    var end = 0
    var endOffset: Int64 = BufferedPcapReader.fileHeaderSize

    /// The file offset of the next record.
    var consumedOffset: Int64 { endOffset - Int64(end - start) }

    /// Link types whose records libpcap rewrites after reading them, so their
    /// bytes in the file are not what libpcap hands over: its
    /// `swap_pseudo_headers` (pcap-common.c, later pcap-util.c), run on
    /// byte-swapped files, and its Linux USB mmapped length fix-up. Reading
    /// crafted byte-swapped files with the installed libpcap 1.10.3 showed it
    /// changing exactly these: USB_LINUX (189), USB_LINUX_MMAPPED (220) and
    /// NFLOG (239), which always stay with libpcap, and PFLOG (117, uid/pid),
    /// LINUX_SLL (113) and LINUX_SLL2 (276, SocketCAN ids), which stay with it
    /// when the file is byte-swapped.
    static let rewrittenAlways: Set<Int32> = [189, 220, 239]
    static let rewrittenWhenSwapped: Set<Int32> = [113, 117, 276]

    /// A reader for the file behind `handle` when its records can be read
    /// without libpcap, nil otherwise.
    init?(eligible handle: OpaquePointer, capacity: Int) {
        precondition(capacity >= Self.recordHeaderSize, "the buffer must hold a record header")
        guard let file = pcap_file(handle) else { return nil }
        let fd = fileno(file)
        var st = stat()
        // A pipe or a device cannot be read at an offset.
        guard fd >= 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        // 2.4 only: older versions may have caplen and len swapped (libpcap guesses per record).
        guard pcap_major_version(handle) == 2, pcap_minor_version(handle) == 4 else { return nil }
        var magic: UInt32 = 0
        // Safe: reads at most 4 bytes into the 4-byte `magic`.
        guard pread(fd, &magic, 4, 0) == 4 else { return nil }
        // Compared in host order, as libpcap does: "swapped" means "not this host's order".
        let swapped: Bool, fractionScale: Int64
        switch magic {
        case 0xA1B2_C3D4: (swapped, fractionScale) = (false, 1000)
        case 0xA1B2_3C4D: (swapped, fractionScale) = (false, 1)
        case UInt32(0xA1B2_C3D4).byteSwapped: (swapped, fractionScale) = (true, 1000)
        case UInt32(0xA1B2_3C4D).byteSwapped: (swapped, fractionScale) = (true, 1)
        default: return nil  // Kuznetzov's and other modified formats have longer record headers
        }
        guard swapped == (pcap_is_swapped(handle) == 1) else { return nil }
        let dlt = pcap_datalink(handle)
        if Self.rewrittenAlways.contains(dlt) || (swapped && Self.rewrittenWhenSwapped.contains(dlt)) { return nil }
        let snapshot = pcap_snapshot(handle)
        guard snapshot > 0 else { return nil }
        self.fd = fd
        self.capacity = capacity
        self.swapped = swapped
        self.fractionScale = fractionScale
        self.snapshot = UInt32(snapshot)
    }

    deinit { storage?.deallocate() }

    /// The buffer, allocated the first time it is needed.
    func buffer() -> UnsafeMutableRawPointer {
        if let storage { return storage }
        let b = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        storage = b
        return b
    }

    enum Fill { case more, endOfFile, failed }

    /// Moves the unread tail to the buffer's start and reads as much of the
    /// file as fits after it (one `pread`; call again while a record is still
    /// incomplete).
    func refill() -> Fill {
        let base = buffer()
        let tail = end - start
        if start > 0 {
            // Safe: both ranges lie inside the buffer (start + tail == end <= capacity); memmove allows overlap.
            if tail > 0 { memmove(base, base + start, tail) }
            start = 0
            end = tail
        }
        precondition(end < capacity, "refill with a full buffer: a record larger than the buffer must go to libpcap")
        while true {
            // Safe: writes at most capacity - end bytes after base + end.
            let n = pread(fd, base + end, capacity - end, off_t(endOffset))
            if n > 0 {
                end += n
                endOffset += Int64(n)
                return .more
            }
            if n == 0 { return .endOfFile }
            if errno == EINTR { continue }
            return .failed
        }
    }

    /// Continues after a record libpcap read, at `offset`.
    func restart(at offset: Int64) {
        start = 0
        end = 0
        endOffset = offset
    }
}

/// How the 32-bit fields of a record header are loaded; a type parameter so
/// that the byte-order choice is made once per file, not per field.
protocol PcapRecordOrder {
    /// The 32-bit field at `offset` of the record header at `header`, in host order.
    static func field(_ header: UnsafeRawPointer, _ offset: Int) -> UInt32
}

enum HostRecordOrder: PcapRecordOrder {
    @inline(__always)
    static func field(_ header: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        header.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    }
}

enum SwappedRecordOrder: PcapRecordOrder {
    @inline(__always)
    static func field(_ header: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        header.loadUnaligned(fromByteOffset: offset, as: UInt32.self).byteSwapped
    }
}

extension OfflineCapture {
    // Kept whole: the per-record loop of replay; a split would put its cursor
    // and totals behind a call on every record.
    /// `read` through the buffered reader. Same contract, same bookkeeping
    /// (`deliver`), same errors.
    func readBuffered<S: PacketSink, O: PcapRecordOrder>(
        _ reader: BufferedPcapReader, _: O.Type, into sink: inout S, decoder: inout PacketDecoder,
        limit: UInt64, progress: ((OfflineCapture, ReadTotals) -> Void)?
    ) throws(CaptureError) -> ReadTotals {
        var totals = ReadTotals()
        let progressMask: UInt64 = (1 << 20) - 1
        let base = UnsafeRawPointer(reader.buffer())
        let snapshot = reader.snapshot
        let scale = reader.fractionScale
        let fractionLimit = reader.fractionLimit
        let headerSize = BufferedPcapReader.recordHeaderSize
        var pos = reader.start
        var end = reader.end
        records: while totals.packets < limit {
            let available = end &- pos
            var refillMayHelp = true
            if available >= headerSize {
                // Safe: a whole record header lies at base + pos (pos + 16 <= end <= capacity).
                let header = base + pos
                let caplen = O.field(header, 8)
                if caplen <= snapshot && Int(caplen) &+ headerSize <= available {
                    let wire = O.field(header, 12)
                    // Seconds are unsigned (2^31 s and later are after 2038, as `OfflineCapture.unsigned`
                    // reads libpcap's); a fraction at or above its limit makes the record's time impossible.
                    let fraction = O.field(header, 4)
                    let ts = fraction < fractionLimit
                        ? Int64(O.field(header, 0)) &* 1_000_000_000 &+ Int64(fraction) &* scale : Self.invalidTimestamp
                    // Safe: the record's caplen bytes follow its header inside the buffer (checked just above),
                    // and stay there until the next refill, after this call.
                    Self.deliver(header + headerSize, caplen: caplen, wire: wire, timestampNanos: ts,
                                 totals: &totals, decoder: &decoder, sink: &sink)
                    pos &+= headerSize &+ Int(caplen)
                    if let progress, totals.packets & progressMask == 0 {
                        reader.start = pos
                        progress(self, totals)
                    }
                    continue
                }
                // Above the snapshot: libpcap's rules. Larger than the buffer: libpcap reads it.
                refillMayHelp = caplen <= snapshot && Int(caplen) + headerSize <= reader.capacity
            }
            reader.start = pos
            if refillMayHelp {
                let fill = reader.refill()
                pos = reader.start
                end = reader.end
                if fill == .more { continue }
                if fill == .endOfFile && pos == end { break }  // the file ends between records
            }
            // A short header or record at the end, a read error, or an odd record: libpcap reads it.
            switch libpcapReadsNextRecord(reader) {
            case .record(let h, let d):
                Self.deliver(h, d, totals: &totals, decoder: &decoder, sink: &sink)
                pos = reader.start
                end = reader.end
                if let progress, totals.packets & progressMask == 0 { progress(self, totals) }
            case .end:
                break records
            case .damaged(let message):
                throw damaged(totals, message)
            }
        }
        reader.start = pos
        // Leave libpcap's stream where this reader stopped, so it could carry on from there.
        if let file = pcap_file(handle) { fseeko(file, off_t(reader.consumedOffset), SEEK_SET) }
        return finish(totals)
    }

    /// Positions libpcap on the buffered reader's next record and lets it read
    /// that one record.
    private func libpcapReadsNextRecord(_ reader: BufferedPcapReader) -> LibpcapRecord {
        guard let file = pcap_file(handle) else { return .damaged("the capture file is no longer open") }
        guard fseeko(file, off_t(reader.consumedOffset), SEEK_SET) == 0 else {
            return .damaged("error reading dump file: " + String(cString: strerror(errno)))
        }
        let next = nextRecordFromLibpcap()
        // Where libpcap stopped, even after a damaged record, so that `bytesConsumed` is the same for both readers.
        reader.restart(at: Int64(ftello(file)))
        return next
    }
}
