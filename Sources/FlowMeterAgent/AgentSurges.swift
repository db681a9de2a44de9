import FlowMeterCore
import FlowMeterConfig
import FlowMeterAccounting
import FlowMeterExport
import FlowMeterFormat
import Foundation
import Logging
import Synchronization

/// The agent's surge detector behind a lock: ticked once a second with the
/// reading the store also gets, read by every scrape. Starts and ends are
/// logged with the cell and its kind, never a peer.
final class AgentSurges: Sendable {
    private let detector: Mutex<SurgeDetector>
    private let logger: Logger

    init(settings: SurgeSettings, logger: Logger) {
        detector = Mutex(SurgeDetector(settings: settings))
        self.logger = logger
    }

    func tick(_ r: AgentReading, now: Date) {
        let changes = detector.withLock { d in
            d.tick(r.surgeInput, now: now)
            return d.changes
        }
        for s in changes {
            let cell = "relay \(s.relay), category \(s.category.label), direction \(s.direction.label)"
            if let end = s.end {
                logger.notice("surge ended: \(cell), \(Format.duration(end.timeIntervalSince(s.start))), \(Format.bytes(s.bytes))")
            } else {
                logger.warning("surge started: \(cell) (\(s.kind.rawValue))")
            }
        }
    }

    var statuses: [SurgeCellStatus] { detector.withLock { $0.statuses } }

    /// Ended spans (once) and open ones (as they stand), for the store.
    func drainSpans() -> [SurgeSpan] { detector.withLock { $0.drainSpans() } }
}
