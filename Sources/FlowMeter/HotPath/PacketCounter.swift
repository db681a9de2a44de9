/// Classify-and-count for one packet summary: the last two steps of the hot
/// path, used by the single-threaded replay and by each worker.
public struct PacketCounter: Sendable {
    public let classifier: Classifier
    public let block: CounterBlock

    public init(classifier: Classifier, block: CounterBlock) {
        precondition(block.layout.relayCount == classifier.relayCount, "counter layout does not match relays")
        self.classifier = classifier
        self.block = block
    }

    /// Counts `s`; returns the slot it was counted under, or nil for a packet
    /// that could not be decoded (counted under its reason).
    @inline(__always)
    @discardableResult
    public func count(_ s: PacketSummary) -> CounterSlot? {
        if s.outcome == .failed {
            block.countFailure(s)
            return nil
        }
        let slot = classifier.classify(s)
        let peer = slot.direction == .inbound ? s.src : s.dst
        block.count(s, into: slot, peerIsTorInternal: s.outcome == .ip && peer.isTorInternal)
        return slot
    }
}
