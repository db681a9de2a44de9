/// A change in whether a capture thread captures, for the agent's log: each
/// is reported once, not at every retry (the thread retries with backoff up
/// to every 30 s for as long as the interface is missing).
public enum CaptureStateChange: Sendable, Equatable, CustomStringConvertible {
    /// Capture stopped (or could not start); the reason as the gap records it.
    case down(interface: String, worker: Int, reason: String)
    /// Still not capturing, but a retry failed for another reason than before.
    case stillDown(interface: String, worker: Int, reason: String)
    /// Capturing again after a gap of `seconds`.
    case up(interface: String, worker: Int, seconds: Double)

    public var description: String {
        switch self {
        case .down(let i, let w, let r):
            return "capture on \(i) (thread \(w)) is down: \(r); retrying every 0.5 s to 30 s and recording the gap"
        case .stillDown(let i, let w, let r):
            return "capture on \(i) (thread \(w)) is still down, now: \(r)"
        case .up(let i, let w, let s):
            return "capture on \(i) (thread \(w)) is up again after \(Int(s.rounded())) s down"
        }
    }
}
