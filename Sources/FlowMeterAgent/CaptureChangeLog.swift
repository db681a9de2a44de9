import FlowMeterCapture
import Logging

extension Agent {
    /// The capture threads' state changes in the agent's log: down and a new
    /// reason as errors, back up as a notice; once each, never per retry.
    static func logCaptureChange(_ logger: Logger) -> @Sendable (CaptureStateChange) -> Void {
        { change in
            switch change {
            case .down, .stillDown: logger.error("\(change)")
            case .up: logger.notice("\(change)")
            }
        }
    }
}
