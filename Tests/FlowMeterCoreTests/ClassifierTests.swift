import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterCore

/// One test per rule of docs/classification.md §3, and per ambiguous case of §4.
@Suite struct ClassifierTests {
    static let host = IPAddress(parsing: "203.0.113.5")!
    static let guardAddress = IPAddress(parsing: "203.0.113.10")!
    static let exitAddress = IPAddress(parsing: "203.0.113.11")!
    static let exitOut = IPAddress(parsing: "203.0.113.12")!
    static let remoteRelay = IPAddress(parsing: "198.51.100.1")!
    static let remoteDir = IPAddress(parsing: "198.51.100.2")!
    static let web = IPAddress(parsing: "192.0.2.80")!
    static let resolver = IPAddress(parsing: "203.0.113.53")!

    static func model(consensus: Bool = true, localKnown: Bool = true) -> HostModel {
        var m = HostModel()
        var g = HostModel.Relay(name: "guardA")
        g.orListeners = [.init(address: localKnown ? guardAddress : nil, port: PortNumber(9001))]
        g.dirListeners = [.init(address: localKnown ? guardAddress : nil, port: PortNumber(9030))]
        g.addresses = localKnown ? [guardAddress] : []
        g.orOutboundAddresses = g.addresses
        var e = HostModel.Relay(name: "exitB")
        e.orListeners = [.init(address: localKnown ? exitAddress : nil, port: PortNumber(443))]
        e.addresses = localKnown ? [exitAddress, exitOut] : []
        e.orOutboundAddresses = localKnown ? [exitAddress] : []
        e.isExit = true
        e.exitAddresses = localKnown ? [exitOut] : []
        m.relays = [g, e]
        m.hostAddresses = localKnown ? [host] : []
        m.resolvers = [resolver]
        if consensus {
            var c = Consensus()
            c.orPorts = [(remoteRelay, PortNumber(443)), (guardAddress, PortNumber(9001))]
            c.dirPorts = [(remoteDir, PortNumber(9030))]
            m.consensus = c
        }
        return m
    }

    static func tcp(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, proto: IPProtocol = .tcp) -> PacketSummary {
        .ipv4(from: src, sport, to: dst, dport, proto: proto)
    }

    func slot(_ s: PacketSummary, _ m: HostModel = ClassifierTests.model()) -> (String, String, String) {
        let r = Classifier(m).classify(s)
        return (m.relayLabels[r.relay], r.category.label, r.direction.label)
    }

    @Test func framesThatAreNotIPBelongToTheHostAndFollowTheLinkDirection() {
        var s = PacketSummary()
        s.outcome = .nonIP
        #expect(slot(s) == ("host", "non_ip", "in"))
        s.linkSaysOutgoing = true
        #expect(slot(s) == ("host", "non_ip", "out"))
    }

    @Test func bothDirectionsOfAPeerConnectingToOurORPortAreOrInbound() {
        #expect(slot(Self.tcp(Self.web, 50000, Self.guardAddress, 9001)) == ("guardA", "or_inbound", "in"))
        #expect(slot(Self.tcp(Self.guardAddress, 9001, Self.web, 50000)) == ("guardA", "or_inbound", "out"))
    }

    @Test func ourDirPortIsDirForItsInstance() {
        #expect(slot(Self.tcp(Self.web, 40000, Self.guardAddress, 9030)) == ("guardA", "dir", "in"))
    }

    @Test func anOutboundConnectionTo443IsOrOutboundOnlyWhenTheConsensusSaysItIsARelay() {
        #expect(slot(Self.tcp(Self.exitAddress, 40000, Self.remoteRelay, 443)) == ("exitB", "or_outbound", "out"))
        #expect(slot(Self.tcp(Self.remoteRelay, 443, Self.exitAddress, 40000)) == ("exitB", "or_outbound", "in"))
        // The same port at an address that is not a relay is exit traffic (from the exit address).
        #expect(slot(Self.tcp(Self.exitOut, 40000, Self.web, 443)) == ("exitB", "exit", "out"))
    }

    @Test func ourFetchesFromARelaysDirPortAreDir() {
        #expect(slot(Self.tcp(Self.guardAddress, 40001, Self.remoteDir, 9030)) == ("guardA", "dir", "out"))
    }

    @Test func withoutAConsensusTheConfiguredRelayPortsDecide() {
        let m = Self.model(consensus: false)
        #expect(slot(Self.tcp(Self.guardAddress, 40000, Self.web, 9001), m) == ("guardA", "or_outbound", "out"))
        #expect(slot(Self.tcp(Self.guardAddress, 40000, Self.web, 9030), m) == ("guardA", "dir", "out"))
        #expect(slot(Self.tcp(Self.host, 40000, Self.remoteRelay, 443), m) == ("host", "other", "out"))
    }

    @Test func port53OnEitherEndOrAConfiguredResolverIsDNS() {
        #expect(slot(Self.tcp(Self.exitOut, 40000, Self.web, 53, proto: .udp)) == ("host", "dns", "out"))
        #expect(slot(Self.tcp(Self.web, 53, Self.exitOut, 40000)) == ("host", "dns", "in"))
        #expect(slot(Self.tcp(Self.host, 40000, Self.resolver, 853)) == ("host", "dns", "out"))
    }

    @Test func exitNeedsTheExitAddressAndAnEphemeralPort() {
        #expect(slot(Self.tcp(Self.exitOut, 45000, Self.web, 80)) == ("exitB", "exit", "out"))
        #expect(slot(Self.tcp(Self.web, 80, Self.exitOut, 45000)) == ("exitB", "exit", "in"))
        // ssh to the exit's address lands on port 22, not an ephemeral port: the host's.
        #expect(slot(Self.tcp(Self.web, 51000, Self.exitOut, 22)) == ("host", "other", "in"))
        // The host's own address is not an exit address.
        #expect(slot(Self.tcp(Self.host, 45000, Self.web, 80)) == ("host", "other", "out"))
    }

    @Test func twoRelaysOnThisHostTalkingAreCountedOnceAsTheListenersInbound() {
        #expect(slot(Self.tcp(Self.exitAddress, 40000, Self.guardAddress, 9001)) == ("guardA", "or_inbound", "in"))
        #expect(slot(Self.tcp(Self.guardAddress, 9001, Self.exitAddress, 40000)) == ("guardA", "or_inbound", "out"))
    }

    @Test func trafficBetweenTwoForeignAddressesIsTheHostsOther() {
        #expect(slot(Self.tcp(Self.web, 40000, Self.remoteRelay, 9001)) == ("host", "other", "in"))
    }

    @Test func aListenerWithAnAddressDoesNotClaimThePortOnOtherAddresses() {
        // nginx on the host address's 443 is not exitB's ORPort (bound to .11).
        #expect(slot(Self.tcp(Self.web, 50000, Self.host, 443)) == ("host", "other", "in"))
        #expect(slot(Self.tcp(Self.web, 50000, Self.exitAddress, 443)) == ("exitB", "or_inbound", "in"))
    }

    @Test func withNoLocalAddressKnownListenersMatchByPortAlone() {
        let m = Self.model(consensus: false, localKnown: false)
        #expect(slot(Self.tcp(Self.web, 50000, Self.remoteDir, 9001), m) == ("guardA", "or_inbound", "in"))
        #expect(slot(Self.tcp(Self.remoteDir, 9001, Self.web, 50000), m) == ("guardA", "or_inbound", "out"))
    }

    @Test func aConnectionFirstSeenMidStreamIsClassifiedLikeANewOne() {
        var s = Self.tcp(Self.web, 50000, Self.guardAddress, 9001)
        s.tcpFlags = TCPFlags.ack.rawValue  // no SYN ever seen
        #expect(slot(s) == ("guardA", "or_inbound", "in"))
    }

    @Test func torInternalPeersAreRecognisedAsTorExcludesThem() {
        for a in ["10.1.2.3", "127.0.0.1", "100.64.0.1", "100.127.255.255", "169.254.1.1", "172.16.0.1",
                  "172.31.255.255", "192.168.1.1", "0.1.2.3", "fc00::1", "fe80::1", "::1"] {
            #expect(IPAddress(parsing: a)!.isTorInternal, "\(a)")
        }
        for a in ["203.0.113.5", "172.32.0.1", "2001:db8::1", "100.128.0.1", "100.63.255.255", "169.253.1.1",
                  "172.15.255.255", "192.169.0.1", "11.0.0.1", "126.255.255.255", "128.0.0.1", "1.2.3.4"] {
            #expect(!IPAddress(parsing: a)!.isTorInternal, "\(a)")
        }
    }

    /// A model where address-less and addressed listeners share ports, so the
    /// listener shortcut's precedence (addressed first, then the first
    /// address-less one) is exercised.
    static func overlappingListenersModel() -> HostModel {
        var m = model()
        var c = HostModel.Relay(name: "middleC")
        c.orListeners = [.init(address: nil, port: PortNumber(9001)), .init(address: guardAddress, port: PortNumber(9002))]
        c.dirListeners = [.init(address: nil, port: PortNumber(443))]
        c.addresses = [guardAddress]
        m.relays.append(c)
        return m
    }

    @Test func theListenerShortcutAndTheReadersCodeAnswerWhatTheFullRulesAnswerForRandomPackets() {
        let addresses = [Self.host, Self.guardAddress, Self.exitAddress, Self.exitOut, Self.remoteRelay,
                         Self.remoteDir, Self.web, Self.resolver, IPAddress(parsing: "2001:db8::5")!,
                         .zeroV4, IPAddress(parsing: "10.1.2.3")!]
        let ports: [UInt16] = [9001, 9002, 9030, 443, 53, 80, 40000, 50000, 0]
        let models = [Self.model(), Self.model(consensus: false), Self.model(localKnown: false),
                      Self.overlappingListenersModel()]
        var rng = SeededRandom(seed: 42)
        for m in models {
            let fast = Classifier(m), full = Classifier(m, listenerShortcut: false)
            let counter = PacketCounter(classifier: full, block: CounterBlock(layout: CounterLayout(relayCount: full.relayCount)))
            for _ in 0..<20_000 {
                let r = rng.next()
                var s = Self.tcp(addresses[Int(r % UInt64(addresses.count))], ports[Int((r >> 8) % UInt64(ports.count))],
                                 addresses[Int((r >> 16) % UInt64(addresses.count))], ports[Int((r >> 24) % UInt64(ports.count))],
                                 proto: r >> 32 & 3 == 0 ? .udp : .tcp)
                s.linkSaysOutgoing = r >> 40 & 1 == 1
                var c1 = true, c2 = true
                let a = fast.classify(s, cacheable: &c1), b = full.classify(s, cacheable: &c2)
                #expect(a == b && c1 == c2, "\(s.src):\(s.srcPort.rawValue) → \(s.dst):\(s.dstPort.rawValue)")
                // What the replay reader hands a worker must be what the worker would compute.
                let known = fast.listenerCode(s, layout: counter.block.layout)
                if known != .unknown {
                    let c = counter.classifyForFlow(s)
                    #expect(known == c.code && c.cacheable)
                }
            }
        }
    }
}

