import FlowMeterCore
#if canImport(Glibc)
import Glibc
#endif

// What every fuzz target shares: starting libFuzzer's driver, the input as a
// file or as text, and reading a capture file.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<Target>_main` (so tests can
/// link it too), which shadows libFuzzer's own main: each target's entry calls
/// this to start libFuzzer's driver with its one-input function.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var argc = argc, argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, body)
}

public enum FuzzInput {
    /// The input as text, bytes that are not UTF-8 replaced (the parsers read
    /// text; their files are read the same lenient or strict way by themselves).
    public static func text(_ data: UnsafePointer<UInt8>, _ size: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    }

    /// Writes the input to one file per fuzzing process and name (parsers that
    /// read a path), rewritten for each input; nil if it could not be written.
    public static func file(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> String? {
        let path = "/tmp/flowmeter-fuzz-\(getpid())-\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return nil }
        let written = write(fd, data, size)
        close(fd)
        return written == size ? path : nil
    }
}

struct CountingSink: PacketSink {
    var packets: UInt64 = 0
    mutating func consume(_ s: PacketSummary) { packets &+= 1 }
}

public enum FuzzCapture {
    /// A capture file of arbitrary bytes through `reader`, then decoded: what
    /// the reader counted is what it handed on, and never more captured than
    /// wire bytes.
    public static func read(_ data: UnsafePointer<UInt8>, _ size: Int, reader: OfflineReader) -> CInt {
        guard let path = FuzzInput.file(data, size, name: "capture.pcap"),
              let capture = try? OfflineCapture(path: path, reader: reader) else { return 0 }
        var decoder = PacketDecoder(linkType: capture.linkType, fragmentCacheSlots: 16)
        var sink = CountingSink()
        let totals = (try? capture.read(into: &sink, decoder: &decoder)) ?? capture.lastTotals
        precondition(totals.packets == sink.packets, "read \(totals.packets) records, handed on \(sink.packets)")
        precondition(totals.capturedBytes <= totals.bytes, "captured bytes exceed wire bytes")
        return 0
    }
}
