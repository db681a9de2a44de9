import FlowMeterCore
import FlowMeterConfig
import FlowMeterAccounting
import Foundation
import Logging
import Synchronization

/// A relay whose tor FlowMeter may ask for its own figures.
public struct TorControlTarget: Sendable {
    public var relay: String
    public var settings: TorControlSettings
    public var rule: AccountingRule
    public var accountingMax: UInt64
    /// Where tor keeps `state` (for its expected usage E, which moves the soft limit).
    public var dataDirectory: String?

    public init(relay: String, settings: TorControlSettings, rule: AccountingRule, accountingMax: UInt64, dataDirectory: String?) {
        self.relay = relay; self.settings = settings; self.rule = rule; self.accountingMax = accountingMax
        self.dataDirectory = dataDirectory
    }

    /// nil when the torrc names no control port FlowMeter can use.
    public init?(_ instance: TorInstance) {
        guard let control = instance.control else { return nil }
        let rule = instance.accounting?.rule.flatMap { AccountingRule(rawValue: $0) } ?? .max
        self.init(relay: instance.name, settings: control, rule: rule, accountingMax: instance.accounting?.maxBytes ?? 0,
                  dataDirectory: instance.dataDirectory)
    }
}

/// Asks each relay's tor for its accounting figures on a slow timer, on its
/// own thread (blocking socket I/O with timeouts), never on the packet path.
/// A control port that is missing, refuses the cookie or goes away is logged
/// once per change of state and shown as `up` false; counting goes on.
public final class TorControlPoller: @unchecked Sendable {
    // @unchecked Sendable — Safe: mutable state is behind `state` (a Mutex);
    // the timer runs on one serial queue.
    public typealias WireBytes = @Sendable (_ relay: String) -> UInt64

    private struct Track {
        var status: TorControlStatus
        var lastCondition: String? = nil
        var intervalStart: Date? = nil
        var samples: [(Date, UInt64)] = []
        /// FlowMeter's wire bytes and tor's bytes at the first poll of the interval.
        var baseline: (wire: UInt64, tor: UInt64)? = nil
    }

    private let targets: [TorControlTarget]
    private let wireBytes: WireBytes
    private let logger: Logger
    private let interval: TimeInterval
    private let state: Mutex<[Track]>
    private let queue = DispatchQueue(label: "flowmeter.torcontrol")
    private var timer: DispatchSourceTimer?
    static let maxSamples = 64

    public init(targets: [TorControlTarget], intervalSeconds: TimeInterval = 10, logger: Logger, wireBytes: @escaping WireBytes) {
        self.targets = targets
        self.wireBytes = wireBytes
        self.logger = logger
        self.interval = intervalSeconds
        state = Mutex(targets.map { Track(status: TorControlStatus(relay: $0.relay, up: false, rule: $0.rule, accountingMax: $0.accountingMax)) })
    }

    public func start() {
        guard !targets.isEmpty else { return }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now(), repeating: interval, leeway: .milliseconds(200))
        t.setEventHandler { [self] in pollOnce(now: Date()) }
        t.resume()
        timer = t
    }

    public func stop() {
        timer?.cancel()
        timer = nil
    }

    /// The latest view of every relay, for /metrics and /api/v1/status.
    public func statuses() -> [TorControlStatus] { state.withLock { $0.map(\.status) } }

    /// One round over every relay (the timer's work; tests call it directly).
    public func pollOnce(now: Date) {
        for (i, target) in targets.enumerated() {
            let result: Result<[String: String], TorControlError>
            do { result = .success(try TorControlClient(settings: target.settings).getinfo()) } catch { result = .failure(error) }
            let wire = wireBytes(target.relay)
            let e = expectedUsage(target)
            state.withLock { tracks in record(result, into: &tracks[i], target: target, wire: wire, expectedUsage: e, now: now) }
        }
    }

    private func record(_ result: Result<[String: String], TorControlError>, into t: inout Track, target: TorControlTarget,
                        wire: UInt64, expectedUsage: UInt64, now: Date) {
        switch result {
        case .failure(let error):
            if t.lastCondition != error.kind {
                logger.warning("\(target.relay): tor's own figures unavailable (\(error)); counting packets goes on")
                t.lastCondition = error.kind
            }
            t.status.up = false
        case .success(let values):
            let figures = TorControlFigures(getinfo: values, readAt: now)
            if t.lastCondition != "up" {
                logger.info("\(target.relay): reading tor's own accounting figures from its control port")
                t.lastCondition = "up"
            }
            let used = target.rule.bytes(read: figures.bytesRead, written: figures.bytesWritten)
            if figures.intervalStart != t.intervalStart {
                t.intervalStart = figures.intervalStart
                t.samples = []
                t.baseline = (wire, used)
            }
            t.samples.append((now, used))
            if t.samples.count > Self.maxSamples { t.samples.removeFirst(t.samples.count - Self.maxSamples) }
            t.status.up = true
            t.status.figures = figures
            if let b = t.baseline, used > b.tor, wire >= b.wire {
                t.status.wireToTorRatio = Double(wire - b.wire) / Double(used - b.tor)
            }
            t.status.prediction = figures.accountingEnabled
                ? TorLivePredictor.predict(samples: t.samples, latest: figures, accountingMax: target.accountingMax,
                                           expectedBytesPerMinute: expectedUsage, now: now)
                : nil
        }
    }

    /// Tor's E for this interval from its state file, when readable (0 otherwise).
    private func expectedUsage(_ target: TorControlTarget) -> UInt64 {
        guard let dir = target.dataDirectory,
              let text = try? String(contentsOfFile: dir + "/state", encoding: .utf8),
              let s = try? TorAccountingState(stateFile: text) else { return 0 }
        return s.expectedUsage ?? 0
    }
}
