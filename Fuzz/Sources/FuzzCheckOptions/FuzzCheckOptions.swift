import FlowMeterReports
import Foundation
import FuzzSupport

/// `flowmeter check`'s option values, arbitrary text: one line each for
/// --warning, --critical, --warning-hours, --critical-hours and --max-age
/// (the hours read as the argument parser reads a Double). Values that pass
/// `CheckPlugin.Options` must then evaluate quotas at the edges of their
/// ranges into one status line; values that do not give a CheckError. Never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckOptions(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fields = FuzzInput.text(data, size).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    func field(_ i: Int) -> String? { i < fields.count && !fields[i].isEmpty ? fields[i] : nil }
    guard let options = try? CheckPlugin.Options(
        warning: field(0) ?? "80", critical: field(1) ?? "95",
        warningHours: field(2).flatMap(Double.init), criticalHours: field(3).flatMap(Double.init),
        maxAge: field(4), defaultMaxAge: 600) else { return 0 }
    let now = Date(timeIntervalSince1970: 1_767_225_600)
    let quotas = [
        CheckPlugin.QuotaInput(name: "q'=|", used: .max, limit: 1, periodEnd: now.addingTimeInterval(3e9),
                               exhaustion: now.addingTimeInterval(-3e9), relay: nil),
        CheckPlugin.QuotaInput(name: "edge", used: 0, limit: .max, periodEnd: now.addingTimeInterval(3e9),
                               exhaustion: now.addingTimeInterval(2.9e9), relay: nil),
        CheckPlugin.QuotaInput(name: "half", used: 1 << 62, limit: 1 << 63, periodEnd: now.addingTimeInterval(60),
                               exhaustion: now.addingTimeInterval(30), relay: nil),
    ]
    for newest in [nil, now, now.addingTimeInterval(-3.2e9), Date.distantPast] {
        let result = CheckPlugin.evaluate(quotas, options: options, now: now, newestData: newest, knownRelays: [])
        precondition(!result.line.contains("\n"), "a status line with a newline: \(result.line)")
    }
    return 0
}
