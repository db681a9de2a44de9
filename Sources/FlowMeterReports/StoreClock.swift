import FlowMeterStore
import Foundation

extension AccountingReader {
    /// The last instant the store has data for: the agent's last
    /// observation, else the end of the last bucket, at most `current`.
    /// Reports and charts end here, so a step in progress is drawn at its
    /// real rate and a quota is evaluated where its data end.
    public func dataEnd(current: Date = Date()) -> Date {
        if let text = try? state(named: AccountingStore.lastObservationKey), let ns = Int64(text) {
            return min(current, Date(timeIntervalSince1970: Double(ns) / 1e9))
        }
        let ends = ((try? resolutions()) ?? []).map { $0.lastStart.addingTimeInterval(Double($0.resolution.rawValue)) }
        return min(current, ends.max() ?? current)
    }
}
