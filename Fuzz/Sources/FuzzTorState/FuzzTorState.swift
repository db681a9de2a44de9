import FlowMeterAccounting
import FlowMeterStore
import Foundation
import FuzzSupport

/// A tor state file of arbitrary bytes: the Accounting* keys read or a
/// TorStateError naming the line, never a trap; the import built from it is
/// one the store can hold exactly, or an ImportError.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorState(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = FuzzInput.text(data, size)
    _ = try? TorAccountingState(stateFile: text)
    if let seed = try? UsageImporter.torState(text, relay: "r", writtenAt: Date(timeIntervalSince1970: 1_772_409_600),
                                              now: Date(timeIntervalSince1970: 1_772_409_600)) {
        precondition(seed.read <= UsageImporter.largestCount && seed.written <= UsageImporter.largestCount,
                     "a count the store cannot hold: \(seed)")
        precondition(seed.start < seed.end, "a seed that ends before it starts: \(seed)")
    }
    return 0
}
