import FlowMeterConfig
import FuzzSupport

/// A cached consensus of arbitrary bytes (either flavour): endpoints or a
/// ConfigError, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConsensus(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.file(data, size, name: "cached-consensus") else { return 0 }
    _ = try? ConsensusFile.load(path)
    return 0
}
