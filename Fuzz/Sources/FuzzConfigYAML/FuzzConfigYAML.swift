import FlowMeterConfig
import FuzzSupport

/// A FlowMeter config file (YAML) of arbitrary bytes: Yams, then FlowMeter's
/// own reading of the nodes; a ConfigFile or a ConfigError, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigYAML(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.file(data, size, name: "flowmeter.yaml") else { return 0 }
    _ = try? ConfigFile.load(path)
    return 0
}
