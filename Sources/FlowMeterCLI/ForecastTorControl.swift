import FlowMeterAgent
import FlowMeterFormat
import FlowMeterReports
import FlowMeterAccounting
import FlowMeterTorControl
import FlowMeterConfig
import Foundation

extension QuotaOptions {
    /// `forecast` and `check` at the current time: a `tor:RELAY` quota whose
    /// torrc names a control port takes tor's own interval and bytes, and
    /// shows tor's state and the limits predicted at FlowMeter's projected
    /// rate (one reading has no rate of its own). A control port that does
    /// not answer leaves the packet view, with a warning.
    func withTorControl(_ statuses: [QuotaStatus]) -> [QuotaStatus] {
        guard statuses.contains(where: { $0.quota.scope.layer == .tor }),
              let loaded = try? configOptions.load(warn: false) else { return statuses }
        let targets = loaded.torInstances.compactMap(TorControlTarget.init)
        return statuses.map { s in
            guard s.quota.scope.layer == .tor, let target = targets.first(where: { $0.relay == s.quota.scope.relay }) else { return s }
            let values: [String: String]
            do { values = try TorControlClient(settings: target.settings).getinfo() } catch {
                Diagnostics.warn("\(target.relay): tor's own figures unavailable (\(error)); using the packets")
                return s
            }
            let now = Date()
            let figures = TorControlFigures(getinfo: values, readAt: now)
            let used = target.rule.bytes(read: figures.bytesRead, written: figures.bytesWritten)
            var status = TorControlStatus(relay: target.relay, up: true, rule: target.rule, accountingMax: target.accountingMax, figures: figures)
            if figures.accountingEnabled {
                status.prediction = TorLivePredictor.predict(samples: [(now, used)], latest: figures, accountingMax: target.accountingMax,
                                                             fallbackRate: s.tor?.rate ?? s.forecast.projection?.futureRate, now: now)
            }
            var q = s.usingTorControl([status])
            q.torControl = status
            return q
        }
    }
}

extension ForecastText {
    static func torControl(_ c: TorControlJSON) -> String {
        var out = "  tor's own figures (control port): \(c.hibernating ?? "?"), \(c.accountingBytes.map { Format.bytes($0) } ?? "–") used under rule \(c.rule)\n"
        if let w = c.predictedWakeup { out += "       wakes \(w)\n" }
        if c.predictedSoftLimit != nil || c.predictedHardLimit != nil {
            out += "       at the projected rate: soft limit \(c.predictedSoftLimit ?? "–"), hard limit \(c.predictedHardLimit ?? "–")\n"
        }
        return out
    }
}
