import Testing
@testable import FlowMeterCore

/// Tor's rule for internal peers, per relay (docs/quotas.md, "Which peers tor counts").
@Suite struct TorPrivatePeerTests {
    static let quiet = IPAddress(parsing: "10.0.0.1")!     // a relay with tor's default
    static let testing = IPAddress(parsing: "10.0.0.2")!   // a relay that counts private bandwidth
    static let internalPeer = IPAddress(parsing: "10.0.0.9")!
    static let publicPeer = IPAddress(parsing: "198.51.100.1")!

    static func model() -> HostModel {
        var m = HostModel()
        var a = HostModel.Relay(name: "quiet")
        a.orListeners = [.init(address: quiet, port: PortNumber(9001))]
        a.addresses = [quiet]
        var b = HostModel.Relay(name: "testing")
        b.orListeners = [.init(address: testing, port: PortNumber(9001))]
        b.addresses = [testing]
        b.countsPrivatePeers = true
        m.relays = [a, b]
        return m
    }

    static func packet(from src: IPAddress, to dst: IPAddress, payload: UInt32) -> PacketSummary {
        .ipv4(from: src, 40000, to: dst, 9001, payload: payload)
    }

    /// Tor payload counted for one packet from `peer` to `relay`, by the
    /// per-packet path and by the flow table's cached code.
    func torPayload(from peer: IPAddress, to relay: IPAddress) -> (perPacket: UInt64, perFlow: UInt64) {
        let m = Self.model()
        let s = Self.packet(from: peer, to: relay, payload: 100)
        let classifier = Classifier(m)
        let one = PacketCounter(classifier: classifier, block: CounterBlock(layout: CounterLayout(relayCount: classifier.relayCount)))
        let slot = one.count(s)!
        let other = PacketCounter(classifier: classifier, block: CounterBlock(layout: CounterLayout(relayCount: classifier.relayCount)))
        let code = other.classifyForFlow(s)
        other.count(s, code: code.code)
        return (one.block.snapshot().value(slot, .torPayloadBytes), other.block.snapshot().value(code.slot, .torPayloadBytes))
    }

    @Test func aRelayWithTorsDefaultLeavesInternalPeersOutOfTorPayload() {
        let r = torPayload(from: Self.internalPeer, to: Self.quiet)
        #expect(r.perPacket == 0 && r.perFlow == 0)
    }

    @Test func aRelayThatCountsPrivateBandwidthCountsInternalPeers() {
        let r = torPayload(from: Self.internalPeer, to: Self.testing)
        #expect(r.perPacket == 100 && r.perFlow == 100)
    }

    @Test func publicPeersCountForEveryRelay() {
        #expect(torPayload(from: Self.publicPeer, to: Self.quiet) == (100, 100))
        #expect(torPayload(from: Self.publicPeer, to: Self.testing) == (100, 100))
    }

    @Test func theListenerShortcutGivesTheSameCode() {
        let m = Self.model()
        let classifier = Classifier(m)
        let layout = CounterLayout(relayCount: classifier.relayCount)
        let counter = PacketCounter(classifier: classifier, block: CounterBlock(layout: layout))
        for relay in [Self.quiet, Self.testing] {
            let s = Self.packet(from: Self.internalPeer, to: relay, payload: 1)
            #expect(classifier.listenerCode(s, layout: layout) == counter.classifyForFlow(s).code)
        }
    }

    @Test func theHostItselfNeverCountsInternalPeers() {
        let classifier = Classifier(Self.model())
        #expect(classifier.torIgnores(peer: Self.internalPeer, relay: 0))
        #expect(!classifier.torIgnores(peer: Self.internalPeer, relay: 2))
        #expect(!classifier.torIgnores(peer: Self.publicPeer, relay: 1))
    }
}
