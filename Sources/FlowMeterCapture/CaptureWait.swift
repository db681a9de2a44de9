/// How a capture thread waits once a read found its ring empty.
///
/// Under traffic, sleeping `gatherNanos` lets the kernel's blocks gather, so
/// that one wake-up reads several (one `pcap_dispatch` reads every block that
/// is ready); a wake-up per 256 KiB block cost the agent 10 % of its CPU on
/// the veth benchmark (BENCHMARKS.md). That pays only while a sleep is
/// longer than a block takes to fill. When the ring is small (a short sleep)
/// or the traffic slow, the sleep ends before a block is handed over and the
/// thread wakes twice per block (measured: 2,387 wake-ups for 1,844 blocks
/// with a 4 MiB ring); so a sleep after which the ring is still empty makes
/// the next `backoff` waits plain polls (woken when the kernel hands over a
/// block, as libpcap waits), and then gathering is tried again.
public struct CaptureWait: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// Sleep this long, then read.
        case gather(nanos: UInt64)
        /// Wait in poll() for the kernel's next block (or a timeout).
        case poll
    }

    public let gatherNanos: UInt64
    /// Polls after a sleep that found nothing.
    public static let backoff = 8
    /// A read returned packets since the last wait.
    private var busy = false
    private var afterGather = false
    private var pollsLeft = 0

    public init(gatherNanos: UInt64) { self.gatherNanos = gatherNanos }

    /// A read returned `packets` packets (0: the ring was empty).
    public mutating func read(packets: Int32) {
        if packets > 0 { busy = true }
    }

    /// What to do now that a read found the ring empty.
    public mutating func next() -> Step {
        let wasBusy = busy
        if afterGather && !wasBusy { pollsLeft = Self.backoff }
        busy = false
        afterGather = false
        if pollsLeft > 0 {
            pollsLeft -= 1
            return .poll
        }
        guard wasBusy && gatherNanos > 0 else { return .poll }
        afterGather = true
        return .gather(nanos: gatherNanos)
    }
}
