import FlowMeterConfig
import FuzzSupport

/// A torrc of arbitrary bytes: the reader (comments, continuations, CRLF,
/// `%include`, bounded in files and bytes) and the relay built from it must
/// give a relay or a ConfigError, never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorrc(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.file(data, size, name: "torrc") else { return 0 }
    _ = try? Torrc.relay(from: path, defaultName: "fuzz", defaultDataDirectory: "/var/lib/tor")
    return 0
}
