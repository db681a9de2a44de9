import FlowMeterAccounting
import Foundation
import FuzzSupport

/// A quota spec (`NAME LIMIT PERIOD RULE [SCOPE] [tz=ZONE]`) of arbitrary
/// text; a quota that parses must also give a period that contains the
/// instant it was asked for, in its own zone.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuotaSpec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let quota = try? Quota(spec: FuzzInput.text(data, size), defaultZone: TimeZone(identifier: "UTC")!) else {
        return 0
    }
    // Instants around 2026, spread by the input so periods land on zone edges too.
    let seed = data.withMemoryRebound(to: UInt8.self, capacity: size) { p in
        (0..<min(size, 8)).reduce(UInt64(0)) { $0 << 8 | UInt64(p[$1]) }
    }
    let now = Date(timeIntervalSince1970: 1_767_225_600 + Double(seed % (2 * 366 * 86_400)))
    let interval = quota.interval(containing: now)
    precondition(interval.start <= now && now < interval.end,
                 "period \(interval) does not contain \(now)")
    return 0
}
