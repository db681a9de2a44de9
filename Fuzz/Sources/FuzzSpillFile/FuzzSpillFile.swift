import FlowMeterStore
import Foundation
import FuzzSupport

/// A spill file of arbitrary bytes, as a full disk or a killed agent leaves
/// one truncated or garbled in the state directory, read through its path
/// (the reader has no entry from bytes): a spill or a StoreError, never a
/// trap; a spill it gives encodes as the writer does and decodes as itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpillFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.file(data, size, name: "unsaved-counts.json"),
          let spill = try? SpillFile.read(path) else { return 0 }
    _ = spill.packets
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let again = try? encoder.encode(spill)
    precondition(again.flatMap { try? JSONDecoder().decode(SpillFile.self, from: $0) } == spill,
                 "a spill that does not read back as itself: \(spill.id)")
    return 0
}
