import FlowMeterCore
import FuzzSupport

/// Every record's timestamp, wire length and decode result, in order.
struct RecordDigest: PacketSink {
    var packets: UInt64 = 0
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func consume(_ s: PacketSummary) {
        packets &+= 1
        for v in [UInt64(bitPattern: s.timestampNanos), UInt64(s.wireLength), UInt64(s.failure.rawValue)] {
            hash = (hash ^ v) &* 0x0000_0100_0000_01B3
        }
    }
}

struct Outcome {
    var totals: ReadTotals
    var digest: RecordDigest
    var error: CaptureError?
    var pastLibpcap: Bool
}

func readAll(_ path: String, _ reader: OfflineReader) -> Outcome? {
    guard let capture = try? OfflineCapture(path: path, reader: reader) else { return nil }
    if reader == .automatic && !capture.usesPcapngReader { return nil }
    var decoder = PacketDecoder(linkType: capture.linkType, fragmentCacheSlots: 16)
    var sink = RecordDigest()
    var error: CaptureError? = nil
    let totals: ReadTotals
    do { totals = try capture.read(into: &sink, decoder: &decoder) } catch let e { error = e; totals = capture.lastTotals }
    return Outcome(totals: totals, digest: sink, error: error, pastLibpcap: capture.readPastLibpcapsLimits)
}

/// A capture file of arbitrary bytes through FlowMeter's own pcapng reader
/// (PcapngReader.swift), and the same file through libpcap: what the own
/// reader counted is what it handed on, never more captured than wire bytes,
/// and until it meets what libpcap stops at (a second link type or snapshot,
/// a section in the other byte order) it reads exactly as libpcap does: the
/// same records, totals, and damage after the same records with the same message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcapng(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.file(data, size, name: "capture.pcapng"),
          let own = readAll(path, .automatic) else { return 0 }
    precondition(own.totals.packets == own.digest.packets, "read \(own.totals.packets) records, handed on \(own.digest.packets)")
    precondition(own.totals.capturedBytes <= own.totals.bytes, "captured bytes exceed wire bytes")
    guard let libpcap = readAll(path, .libpcap) else { preconditionFailure("libpcap opened the file once, not twice") }
    if own.pastLibpcap {
        precondition(own.totals.packets >= libpcap.totals.packets, "fewer records than libpcap read before its limit")
        return 0
    }
    precondition(own.totals == libpcap.totals, "totals differ: \(own.totals) / libpcap \(libpcap.totals)")
    precondition(own.digest.hash == libpcap.digest.hash, "records differ")
    precondition(own.error == libpcap.error, "errors differ: \(String(describing: own.error)) / libpcap \(String(describing: libpcap.error))")
    return 0
}
