import Foundation

/// Builds small Ethernet/IPv4 captures with a known ground truth for engine
/// tests, and finds the shared corpus relative to this file.
struct TestCapture {
    private(set) var bytes: [UInt8] = []
    private(set) var packets = 0
    private(set) var wireBytes: UInt64 = 0

    init() {
        // pcap global header, microseconds, Ethernet.
        append32(0xA1B2_C3D4); append16(2); append16(4); append32(0); append32(0)
        append32(65535); append32(1)
    }

    private mutating func append16(_ v: UInt16) { bytes += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    private mutating func append32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }

    /// One TCP (proto 6) or UDP (17) packet from `src:sport` to `dst:dport` at `micros`.
    mutating func add(src: UInt32, sport: UInt16, dst: UInt32, dport: UInt16, proto: UInt8 = 6,
                      flags: TCPFlags = [], payload: Int = 0, micros: Int64) {
        let l4 = proto == 6 ? 20 : 8
        let ipLength = 20 + l4 + payload
        var f = [UInt8](repeating: 0, count: 14 + ipLength)
        f[12] = 0x08; f[13] = 0x00
        f[14] = 0x45
        f[16] = UInt8(ipLength >> 8); f[17] = UInt8(ipLength & 0xFF)
        f[22] = 64; f[23] = proto
        for i in 0..<4 {
            f[26 + i] = UInt8((src >> (24 - 8 * UInt32(i))) & 0xFF)
            f[30 + i] = UInt8((dst >> (24 - 8 * UInt32(i))) & 0xFF)
        }
        f[34] = UInt8(sport >> 8); f[35] = UInt8(sport & 0xFF)
        f[36] = UInt8(dport >> 8); f[37] = UInt8(dport & 0xFF)
        if proto == 6 {
            f[46] = 0x50
            f[47] = flags.rawValue
        } else {
            f[38] = UInt8((8 + payload) >> 8); f[39] = UInt8((8 + payload) & 0xFF)
        }
        let wire = max(f.count, 60)  // Ethernet minimum frame, padding not captured
        append32(UInt32(micros / 1_000_000)); append32(UInt32(micros % 1_000_000))
        append32(UInt32(f.count)); append32(UInt32(wire))
        bytes += f
        packets += 1
        wireBytes += UInt64(wire)
    }

    func write(named name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowmeter-engine-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}

enum EngineFixtures {
    static let relayAddress: UInt32 = 0xC633_640A  // 198.51.100.10
    static let orPort: UInt16 = 9001

    /// One exit relay on 198.51.100.10 with ORPort 9001 and DirPort 9030.
    static var model: HostModel {
        var m = HostModel()
        var r = HostModel.Relay(name: "relay1")
        let a = IPAddress(ipv4: relayAddress)
        r.orListeners = [.init(address: a, port: PortNumber(orPort))]
        r.dirListeners = [.init(address: a, port: PortNumber(9030))]
        r.addresses = [a]
        r.exitAddresses = [a]
        r.isExit = true
        m.relays = [r]
        return m
    }

    static var repoRoot: URL {
        Repo.root
    }

    static var corpus: URL { Repo.corpus }

    /// Corpus captures, largest first.
    static func corpusFiles(limit: Int) -> [String] {
        var files: [(String, Int)] = []
        for sub in ["tcpdump", "libpcap"] {
            let dir = corpus.appendingPathComponent(sub)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            for n in names where n.hasSuffix(".pcap") || n.hasSuffix(".pcapng") {
                let p = dir.appendingPathComponent(n).path
                let size = (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0
                files.append((p, size))
            }
        }
        return files.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(limit).map(\.0)
    }

    /// A deterministic mix with a known ground truth, in capture-time order:
    /// `opened` full connections to the ORPort (handshake, data both ways, FIN
    /// both ways), `unanswered` SYNs to it, `reset` connections refused by RST,
    /// and `open` connections still open at the end. Many flows interleave.
    static func torMix(opened: Int, unanswered: Int, reset: Int, open: Int) -> TestCapture {
        var c = TestCapture()
        var t: Int64 = 1_700_000_000_000_000
        var rng = SeededRandom(seed: 42)
        struct Flow { var client: UInt32; var port: UInt16; var kind: Int; var step: Int }
        var flows: [Flow] = []
        for i in 0..<opened { flows.append(Flow(client: 0x5000_0000 &+ UInt32(i), port: UInt16(20000 + i % 40000), kind: 0, step: 0)) }
        for i in 0..<unanswered { flows.append(Flow(client: 0x6000_0000 &+ UInt32(i), port: 1234, kind: 1, step: 0)) }
        for i in 0..<reset { flows.append(Flow(client: 0x7000_0000 &+ UInt32(i), port: 4321, kind: 2, step: 0)) }
        for i in 0..<open { flows.append(Flow(client: 0x5800_0000 &+ UInt32(i), port: 5555, kind: 3, step: 0)) }
        let r = relayAddress, o = orPort
        while !flows.isEmpty {
            let i = Int(rng.next() % UInt64(flows.count))
            var f = flows[i]
            t += 1 + Int64(rng.next() % 50)
            let done: Bool
            switch (f.kind, f.step) {
            case (_, 0): c.add(src: f.client, sport: f.port, dst: r, dport: o, flags: .syn, micros: t); done = f.kind == 1
            case (2, 1): c.add(src: r, sport: o, dst: f.client, dport: f.port, flags: [.rst, .ack], micros: t); done = true
            case (_, 1): c.add(src: r, sport: o, dst: f.client, dport: f.port, flags: [.syn, .ack], micros: t); done = false
            case (_, 2): c.add(src: f.client, sport: f.port, dst: r, dport: o, flags: .ack, micros: t); done = false
            case (_, 3): c.add(src: f.client, sport: f.port, dst: r, dport: o, flags: [.ack, .psh], payload: 1448, micros: t); done = false
            case (_, 4): c.add(src: r, sport: o, dst: f.client, dport: f.port, flags: [.ack, .psh], payload: 1448, micros: t); done = f.kind == 3
            case (_, 5): c.add(src: f.client, sport: f.port, dst: r, dport: o, flags: [.fin, .ack], micros: t); done = false
            default: c.add(src: r, sport: o, dst: f.client, dport: f.port, flags: [.fin, .ack], micros: t); done = true
            }
            f.step += 1
            if done { flows.swapAt(i, flows.count - 1); flows.removeLast() } else { flows[i] = f }
        }
        return c
    }
}

