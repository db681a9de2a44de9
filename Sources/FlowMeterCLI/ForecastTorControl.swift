import FlowMeterAgent
import FlowMeterFormat
import FlowMeterReports
import FlowMeterAccounting
import FlowMeterTorControl
import FlowMeterConfig
import FlowMeterStore
import Foundation

/// How every command evaluates its quotas, as the agent does: one
/// `QuotaStatus.evaluate` per quota, a Tor quota with tor's own figures
/// where its control port answers (else its state file, else the computed
/// interval; `TorIntervalChoice`), so `forecast`, `check`, `report` and
/// `tor-schedule` name the same interval, bytes and source as `run`.
enum QuotaEvaluation {
    /// - Parameter askTor: read the control ports (only at the current
    ///   time: tor knows only the present, so `--now` asks none).
    static func statuses(_ list: [(Quota, QuotaStatus.TorInputs?)], torInstances: [TorInstance], source: AccountingReader,
                         at: Date, askTor: Bool) throws -> [QuotaStatus] {
        let control = askTor ? readings(for: list, torInstances: torInstances) : [:]
        return try list.map { q, tor in
            let relay = q.scope.relay ?? ""
            var s = try QuotaStatus.evaluate(q, source: source, now: at, tor: tor, control: control[relay]?.figures)
            if var c = control[relay], let figures = c.figures {
                let used = c.rule.bytes(read: figures.bytesRead, written: figures.bytesWritten)
                if figures.accountingEnabled {
                    c.prediction = TorLivePredictor.predict(samples: [(figures.readAt, used)], latest: figures,
                                                            accountingMax: c.accountingMax,
                                                            fallbackRate: s.tor?.rate ?? s.forecast.projection?.futureRate,
                                                            now: figures.readAt)
                }
                s.torControl = c
            }
            return s
        }
    }

    /// Tor's figures for each Tor quota whose torrc names a control port. A
    /// control port that does not answer is said once; the quota then
    /// stands on the state file or the computed interval.
    static func readings(for list: [(Quota, QuotaStatus.TorInputs?)], torInstances: [TorInstance]) -> [String: TorControlStatus] {
        let targets = torInstances.compactMap(TorControlTarget.init)
        var out: [String: TorControlStatus] = [:]
        for (q, tor) in list where tor != nil {
            guard let relay = q.scope.relay, let target = targets.first(where: { $0.relay == relay }) else { continue }
            do {
                let values = try TorControlClient(settings: target.settings).getinfo()
                out[relay] = TorControlStatus(relay: relay, up: true, rule: target.rule, accountingMax: target.accountingMax,
                                              figures: TorControlFigures(getinfo: values, readAt: Date()))
            } catch {
                Diagnostics.warn("\(relay): tor's control port did not answer (\(error)); using its state file or the computed interval")
            }
        }
        return out
    }
}
