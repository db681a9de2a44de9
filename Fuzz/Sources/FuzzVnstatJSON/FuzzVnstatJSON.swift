import FlowMeterAccounting
import FlowMeterStore
import Foundation
import FuzzSupport

/// `vnstat --json` output of arbitrary bytes: an import or an ImportError,
/// never a trap; what is imported is what the store can hold exactly.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVnstatJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    for interface in [nil, "eth0"] {
        guard let seed = try? UsageImporter.vnstatJSON(bytes, interface: interface, relay: "host",
                                                      now: Date(timeIntervalSince1970: 1_772_409_600)) else { continue }
        FuzzImport.check(seed)
    }
    return 0
}

enum FuzzImport {
    /// What `UsageImporter.checked` promises of every seed it lets through.
    static func check(_ seed: ImportedUsage) {
        precondition(seed.read <= UsageImporter.largestCount && seed.written <= UsageImporter.largestCount,
                     "a count the store cannot hold: \(seed)")
        precondition(seed.start <= seed.end, "a seed that ends before it starts: \(seed)")
        for d in [seed.start, seed.end] {
            let s = d.timeIntervalSince1970
            precondition(s >= 0 && s <= 253_402_300_799, "an instant outside 1970-9999: \(seed)")
        }
    }
}
