import Testing
import FlowMeterCoreTestSupport
@testable import FlowMeterCore

/// Drives one flow table with summaries, one packet at a time, through the
/// per-packet step production runs (`countAndTrack`: classify, count, track).
/// The host is one relay (index 1) with its ORPort on `server`:9001, so the
/// TCP flows below count under (relay 1, or_inbound) and UDP to port 53
/// under (host, dns).
final class FlowHarness {
    let connections = ConnectionCounters(relayCount: 2)
    let table: FlowTable
    let counter: PacketCounter
    var t: Int64 = 1_000_000_000_000
    static let server: UInt32 = 0xC633_640A
    static let client: UInt32 = 0x5DB8_D822

    init(capacity: Int = 1024, timeouts: FlowTimeouts = FlowTimeouts(), growth: FlowTableGrowth = .growing) {
        table = FlowTable(capacity: capacity, timeouts: timeouts, connections: connections, growth: growth)
        var model = HostModel()
        var relay = HostModel.Relay(name: "guard")
        let address = IPAddress(ipv4: Self.server)
        relay.orListeners = [.init(address: address, port: PortNumber(9001))]
        relay.addresses = [address]
        model.relays = [relay]
        let classifier = Classifier(model)
        counter = PacketCounter(classifier: classifier, block: CounterBlock(layout: CounterLayout(relayCount: classifier.relayCount)))
    }

    func packet(_ src: UInt32, _ sport: UInt16, _ dst: UInt32, _ dport: UInt16, _ flags: TCPFlags,
                payload: UInt32 = 0, proto: IPProtocol = .tcp, after nanos: Int64 = 1_000) {
        t += nanos
        table.countAndTrack(.ipv4(from: src, sport, to: dst, dport, proto: proto, flags: flags, payload: payload, at: t),
                            counter: counter)
    }

    /// Client → server and server → client on one connection.
    func up(_ flags: TCPFlags, payload: UInt32 = 0, port: UInt16 = 40000, after: Int64 = 1_000) {
        packet(Self.client, port, Self.server, 9001, flags, payload: payload, after: after)
    }
    func down(_ flags: TCPFlags, payload: UInt32 = 0, port: UInt16 = 40000, after: Int64 = 1_000) {
        packet(Self.server, 9001, Self.client, port, flags, payload: payload, after: after)
    }
    func handshake(port: UInt16 = 40000) {
        up(.syn, port: port); down([.syn, .ack], port: port); up(.ack, port: port)
    }

    func value(_ m: ConnectionMetric, relay: Int = 1, category: Category = .orInbound) -> UInt64 {
        connections.snapshot().value(relay: relay, category: category, m)
    }
    var opened: UInt64 { value(.opened) }
    var unanswered: UInt64 { value(.unanswered) }
    var closed: UInt64 { value(.closed) }
    var active: UInt64 { value(.active) }
    var peak: UInt64 { value(.peak) }
}

@Suite struct FlowTableTests {
    @Test func aCompletedHandshakeOpensOneConnection() {
        let h = FlowHarness()
        h.up(.syn)
        #expect(h.opened == 0)
        h.down([.syn, .ack])
        #expect(h.opened == 0)
        h.up(.ack)
        #expect(h.opened == 1 && h.active == 1 && h.peak == 1 && h.unanswered == 0)
        h.up([.ack, .psh], payload: 100)
        #expect(h.opened == 1)
    }

    @Test func aRetransmittedSynIsStillOneAttempt() {
        let h = FlowHarness()
        h.up(.syn); h.up(.syn, after: 1_000_000_000); h.up(.syn, after: 2_000_000_000)
        h.table.finishReplay(now: h.t)
        #expect(h.unanswered == 1 && h.opened == 0)
    }

    @Test func aSynWithoutAnswerIsUnansweredAtTheEndOfAReplay() {
        let h = FlowHarness()
        h.up(.syn)
        #expect(h.unanswered == 0)
        h.table.finishReplay(now: h.t)
        #expect(h.unanswered == 1 && h.opened == 0 && h.active == 0)
        #expect(h.table.occupancy == 0)
    }

    @Test func aSynWithoutAnswerIsUnansweredOnceItsHandshakeTimesOut() {
        let h = FlowHarness()
        h.up(.syn)
        // The same ports again after the handshake timeout: the first attempt
        // ended unanswered, the second is a new attempt.
        h.up(.syn, after: h.table.timeouts.tcpHandshake + 1)
        #expect(h.unanswered == 1)
        h.down([.syn, .ack]); h.up(.ack)
        #expect(h.opened == 1 && h.unanswered == 1)
    }

    @Test func aResetInsteadOfSynAckIsAnUnansweredAttempt() {
        let h = FlowHarness()
        h.up(.syn); h.down([.rst, .ack])
        #expect(h.unanswered == 1 && h.opened == 0 && h.closed == 0)
        h.table.finishReplay(now: h.t)
        #expect(h.unanswered == 1)
    }

    @Test func aResetAfterSynAckOpensNothingAndLeavesNothingPending() {
        let h = FlowHarness()
        h.up(.syn); h.down([.syn, .ack]); h.up(.rst)
        h.table.finishReplay(now: h.t)
        #expect(h.unanswered == 0 && h.opened == 0 && h.closed == 0 && h.active == 0)
    }

    @Test func finFromOneSideLeavesTheConnectionOpenAndFromBothClosesIt() {
        let h = FlowHarness()
        h.handshake()
        h.up([.fin, .ack])
        #expect(h.closed == 0 && h.active == 1)
        h.down([.fin, .ack])
        #expect(h.closed == 1 && h.active == 0 && h.peak == 1)
        h.up(.ack)  // the last ACK is absorbed by the closed entry
        h.table.finishReplay(now: h.t)
        #expect(h.opened == 1 && h.closed == 1 && h.unanswered == 0)
    }

    @Test func aResetAfterOpeningClosesTheConnection() {
        let h = FlowHarness()
        h.handshake()
        h.down([.rst])
        #expect(h.closed == 1 && h.active == 0)
        h.up([.rst])
        #expect(h.closed == 1)
    }

    @Test func anIdleOpenedConnectionClosesByTimeout() {
        let h = FlowHarness()
        h.handshake()
        h.up(.ack, after: h.table.timeouts.tcpIdle + 1)
        // The old connection closed; the late ACK starts a mid-stream flow that never opens.
        #expect(h.closed == 1 && h.opened == 1 && h.active == 0)
        let g = FlowHarness()
        g.handshake()
        g.table.finishReplay(now: g.t + g.table.timeouts.tcpIdle + 1)
        #expect(g.closed == 1 && g.active == 0)
    }

    /// Packets that change nothing but the time (a quiet ACK, more data
    /// from a side already seen) take a shortcut past the state machine:
    /// they must still move the flow's time, and leave its state as it was.
    @Test func packetsThatChangeNothingButTheTimeKeepAFlowAliveAndInItsState() {
        let h = FlowHarness()
        h.handshake()
        for _ in 0..<5 { h.up(.ack, after: h.table.timeouts.tcpIdle - 1) }
        #expect(h.opened == 1 && h.active == 1 && h.closed == 0)
        let m = FlowHarness()
        m.up([.ack, .psh], payload: 500)
        for _ in 0..<5 { m.up([.ack, .psh], payload: 500, after: m.table.timeouts.tcpIdle - 1) }
        #expect(m.opened == 0)
        m.down([.ack, .psh], payload: 1448)
        #expect(m.opened == 1 && m.active == 1)
        m.up([.fin, .ack]); m.down([.fin, .ack])
        #expect(m.closed == 1 && m.active == 0)
    }

    @Test func aCounterCellAndItsRelayAndCategoryNameTheSameConnectionGroup() {
        let layout = CounterLayout(relayCount: 3)
        for relay in 0..<3 {
            for category in Category.allCases {
                for direction in Direction.allCases {
                    let cell = layout.cellIndex(CounterSlot(relay: relay, category: category, direction: direction))
                    #expect(ConnectionGroup(cell: cell) == ConnectionGroup(relay: relay, category: category.rawValue))
                }
            }
        }
    }

    @Test func anOpenedConnectionStaysActiveAtTheEndOfAReplay() {
        let h = FlowHarness()
        h.handshake()
        h.table.finishReplay(now: h.t)
        #expect(h.opened == 1 && h.active == 1 && h.closed == 0)
    }

    @Test func aConnectionFirstSeenMidStreamOpensWhenDataFlowsBothWays() {
        let h = FlowHarness()
        h.up(.ack); h.down(.ack)
        #expect(h.opened == 0)  // bare ACKs are not data
        h.up([.ack, .psh], payload: 500)
        #expect(h.opened == 0)
        h.down([.ack, .psh], payload: 1448)
        #expect(h.opened == 1 && h.active == 1)
        h.down([.fin, .ack]); h.up([.fin, .ack])
        #expect(h.closed == 1)
    }

    @Test func aMidStreamFlowThatNeverOpensCountsNothing() {
        let h = FlowHarness()
        h.up([.ack, .psh], payload: 500)
        h.up([.rst])
        h.down([.ack, .psh], payload: 5, port: 40001)
        h.table.finishReplay(now: h.t + h.table.timeouts.tcpIdle + 1)
        #expect(h.opened == 0 && h.closed == 0 && h.unanswered == 0)
    }

    @Test func aSynAfterACloseStartsANewConnectionOnTheSamePorts() {
        let h = FlowHarness()
        h.handshake(); h.up([.fin, .ack]); h.down([.fin, .ack])
        h.handshake()
        #expect(h.opened == 2 && h.closed == 1 && h.active == 1 && h.peak == 1)
    }

    @Test func peakCountsTheMostConnectionsOpenAtOnce() {
        let h = FlowHarness()
        for p in 0..<5 { h.handshake(port: 41000 + UInt16(p)) }
        for p in 0..<3 { h.up(.rst, port: 41000 + UInt16(p)) }
        h.handshake(port: 42000)
        #expect(h.active == 3 && h.peak == 5 && h.closed == 3 && h.opened == 6)
    }

    @Test func udpOpensWhenAnsweredAndClosesWhenIdle() {
        let h = FlowHarness()
        func dns(_ m: ConnectionMetric) -> UInt64 { h.value(m, relay: 0, category: .dns) }
        h.packet(FlowHarness.client, 5353, FlowHarness.server, 53, [], payload: 40, proto: .udp)
        #expect(dns(.opened) == 0)
        h.packet(FlowHarness.server, 53, FlowHarness.client, 5353, [], payload: 120, proto: .udp)
        #expect(dns(.opened) == 1 && dns(.active) == 1)
        h.table.finishReplay(now: h.t + h.table.timeouts.udpIdle + 1)
        #expect(dns(.closed) == 1 && dns(.active) == 0)
    }

    @Test func udpThatIsNeverAnsweredIsAnUnansweredAttempt() {
        let h = FlowHarness()
        h.packet(FlowHarness.client, 5353, FlowHarness.server, 53, [], payload: 40, proto: .udp)
        h.packet(FlowHarness.client, 5353, FlowHarness.server, 53, [], payload: 40, proto: .udp)
        h.table.finishReplay(now: h.t)
        #expect(h.value(.unanswered, relay: 0, category: .dns) == 1 && h.value(.opened, relay: 0, category: .dns) == 0)
    }

    @Test func aFullBucketEvictsUnansweredAttemptsBeforeEstablishedConnections() {
        // Capacity 16 is a single bucket: every flow competes for it.
        let h = FlowHarness(capacity: 16)
        #expect(h.table.capacity == 16)
        h.handshake(port: 1)
        for p in 2...16 { h.up(.syn, port: UInt16(p)) }
        #expect(h.table.occupancy == 16 && h.table.evictions == 0)
        h.up(.syn, port: 17)
        #expect(h.table.evictions == 1 && h.unanswered == 1 && h.table.occupancy == 16)
        // The established connection survived and still closes normally.
        h.up([.fin, .ack], port: 1); h.down([.fin, .ack], port: 1)
        #expect(h.closed == 1 && h.opened == 1)
        h.table.finishReplay(now: h.t)
        #expect(h.unanswered == 16)
    }

    @Test func evictingAnEstablishedConnectionCountsItClosed() {
        let h = FlowHarness(capacity: 16)
        for p in 1...16 { h.handshake(port: UInt16(p)) }
        h.handshake(port: 17)
        #expect(h.table.evictions == 1 && h.closed == 1 && h.opened == 17 && h.active == 16)
    }

    @Test func aFullBucketReusesAnIdleExpiredSlotWithoutCountingAnEviction() {
        let h = FlowHarness(capacity: 16)
        for p in 1...16 { h.up(.syn, port: UInt16(p)) }
        h.up(.syn, port: 17, after: h.table.timeouts.tcpHandshake + 1)
        #expect(h.table.evictions == 0 && h.unanswered == 1)
    }

    @Test func aSynFloodFromSpoofedSourcesStaysInsideTheTableAndIsCountedAsUnanswered() {
        let h = FlowHarness(capacity: 1024)
        var rng = SeededRandom(seed: 7)
        let n = 100_000
        for _ in 0..<n {
            let r = rng.next()
            h.packet(UInt32(truncatingIfNeeded: r), UInt16(truncatingIfNeeded: r >> 32), FlowHarness.server, 9001, .syn)
            #expect(h.table.occupancy <= h.table.capacity)
        }
        #expect(h.table.evictions > 0)
        h.table.finishReplay(now: h.t)
        #expect(h.unanswered == UInt64(n))
        #expect(h.opened == 0 && h.table.occupancy == 0)
        #expect(h.table.bytesReserved == 1024 * FlowTable.bytesPerEntry)
    }

    @Test func theReadersListenerMemoAnswersWhatTheClassifierAnswers() {
        let h = FlowHarness()
        let classifier = h.counter.classifier, layout = h.counter.block.layout
        var memo = ListenerMemo()
        var rng = SeededRandom(seed: 11)
        let destinations: [(UInt32, UInt16)] = [(FlowHarness.server, 9001), (FlowHarness.server, 9002),
                                                (FlowHarness.client, 9001), (FlowHarness.server, 443)]
        let sources: [UInt32] = [FlowHarness.client, 0x0A00_0001, 0xC0A8_0101, 0x7F00_0001]  // public, 10/8, 192.168/16, loopback
        var listenerCodes = 0
        for _ in 0..<2_000 {
            let r = rng.next()
            let (dst, dport) = destinations[Int(r % 4)]
            let s = PacketSummary.ipv4(from: sources[Int(r >> 8 % 4)], UInt16(truncatingIfNeeded: r >> 16), to: dst, dport,
                                       proto: r >> 40 % 8 == 0 ? .udp : .tcp, flags: r >> 44 % 4 == 0 ? [.syn, .ack] : .syn)
            let expected = classifier.connectionAttemptCode(s, layout: layout)
            #expect(memo.connectionAttemptCode(s, classifier: classifier, layout: layout) == expected)
            if expected != .unknown { listenerCodes += 1 }
        }
        #expect(listenerCodes > 100)
    }

    @Test(arguments: [TableMemory.Use.whole, .growing(initial: 8192)])
    func tableMemoryIsZeroFilledWritableAndStartsOnAHugePageBoundary(use: TableMemory.Use) {
        for size in [64, 3 << 20] {
            let memory = TableMemory(byteCount: size, use: use)
            defer { memory.release() }
            #expect(memory.byteCount >= size)
            let bytes = memory.base.bindMemory(to: UInt8.self, capacity: size)
            #expect((0..<size).allSatisfy { bytes[$0] == 0 })
            #expect(UInt(bitPattern: memory.base) % UInt(2 << 20) == 0)
            bytes[size - 1] = 1  // the whole range is writable
        }
    }
}
