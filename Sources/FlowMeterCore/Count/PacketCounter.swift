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
        block.count(s, into: slot, peerIsTorInternal: s.outcome == .ip && classifier.torIgnores(peer: peer, relay: slot.relay))
        return slot
    }

    /// How a decoded IP packet is counted, as a `CellCode` a flow table can
    /// keep for the rest of the flow's packets in the same direction, and
    /// whether it may keep it (`Classifier.classify(_:cacheable:)`).
    @inline(__always)
    func classifyForFlow(_ s: PacketSummary) -> (code: CellCode, slot: CounterSlot, cacheable: Bool) {
        var cacheable = true
        let slot = classifier.classify(s, cacheable: &cacheable)
        let peer = slot.direction == .inbound ? s.src : s.dst
        let c = block.layout.cellCode(slot, torIgnoresPeer: classifier.torIgnores(peer: peer, relay: slot.relay))
        return (c.code, slot, cacheable && c.fits)
    }

    /// Counts a decoded IP packet whose classification is already known.
    @inline(__always)
    func count(_ s: PacketSummary, code: CellCode) {
        block.count(s, cell: code.cell, peerIsTorInternal: code.torIgnoresPeer)
    }
}

extension Classifier {
    /// The code `PacketCounter.classifyForFlow(s)` would give, when the
    /// listener shortcut settles `s` (`listenerSlot`); `.unknown` otherwise.
    /// The replay reader computes it for connection attempts and hands it to
    /// the worker, whose flow table would otherwise classify each new flow
    /// itself: under a SYN flood that moves work from the busier thread to
    /// the idler one.
    @inline(__always)
    func listenerCode(_ s: PacketSummary, layout: CounterLayout) -> CellCode {
        guard s.outcome == .ip, let slot = listenerSlot(s) else { return .unknown }
        let c = layout.cellCode(slot, torIgnoresPeer: torIgnores(peer: s.src, relay: slot.relay))  // inbound: the peer is the source
        return c.fits ? c.code : .unknown
    }
}

extension CounterLayout {
    /// `slot`'s cell and whether its relay's tor ignores the peer
    /// (`Classifier.torIgnores`), as a `CellCode`; `fits` is false when the
    /// cell is too large for the code to be kept.
    @inline(__always)
    func cellCode(_ slot: CounterSlot, torIgnoresPeer: Bool) -> (code: CellCode, fits: Bool) {
        let cell = cellIndex(slot)
        return (CellCode(cell: cell, torIgnoresPeer: torIgnoresPeer), cell < Int(CellCode.maximumCell))
    }
}

/// A counter cell and whether the packet's peer is one the relay's own tor
/// accounting ignores, packed in 16 bits: a flow-table entry keeps one per direction so
/// the packets after a flow's first are counted without classifying again
/// (classification is a pure function of addresses, ports and protocol when
/// `cacheable`; docs/engine.md).
struct CellCode: Equatable {
    var rawValue: UInt16
    static let unknown = CellCode(rawValue: 0xFFFF)
    /// Cells at or above this are not cached (a host with over 2,000 relays).
    static let maximumCell: UInt16 = 0x7FFF
    private static let torIgnoresBit: UInt16 = 0x8000

    init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `cell` must be below `maximumCell` for the code to be cached.
    @inline(__always)
    init(cell: Int, torIgnoresPeer: Bool) {
        rawValue = UInt16(truncatingIfNeeded: cell) & Self.maximumCell | (torIgnoresPeer ? Self.torIgnoresBit : 0)
    }

    var cell: Int { Int(rawValue & Self.maximumCell) }
    var torIgnoresPeer: Bool { rawValue & Self.torIgnoresBit != 0 }
}
