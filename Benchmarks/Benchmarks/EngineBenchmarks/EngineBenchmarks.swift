@preconcurrency import Benchmark
import FlowMeterCore
#if canImport(Glibc)
import Glibc
#endif

// Steady-state hot-path pieces, 10 000 packets per iteration. The gate is the
// allocation count, never time (time is for information only: shared CI
// machines): scripts/check_allocations.sh passes only when every piece's
// count equals the empty loop's at every percentile (the harness allocates a
// constant per sample of its own), so each piece allocates 0 per packet, and
// when the control below shows the counter counts.

private let packetsPerIteration = 10_000

/// Ethernet/IPv4/TCP frames to the relay's ORPort from 4096 clients.
private let frames: [[UInt8]] = (0..<4096).map { i in
    var f = [UInt8](repeating: 0, count: 66)
    f[12] = 0x08; f[14] = 0x45; f[16] = 0; f[17] = 52; f[22] = 64; f[23] = 6
    f[26] = 185; f[27] = UInt8(i >> 8); f[28] = UInt8(i & 0xFF); f[29] = 7
    f[30] = 198; f[31] = 51; f[32] = 100; f[33] = 10
    f[34] = 0xA0; f[35] = UInt8(i & 0xFF); f[36] = 0x23; f[37] = 0x29
    f[46] = 0x50; f[47] = 0x10
    return f
}

private let model: HostModel = {
    var m = HostModel()
    var r = HostModel.Relay(name: "bench")
    let a = IPAddress(ipv4: 0xC633_640A)
    r.orListeners = [.init(address: a, port: PortNumber(9001))]
    r.addresses = [a]
    m.relays = [r]
    return m
}()

private func summaries() -> [PacketSummary] {
    var decoder = PacketDecoder(linkType: .ethernet)
    return frames.enumerated().map { i, f in
        decoder.decode(f.span, wireLength: 1514, timestampNanos: Int64(i) * 1000)
    }
}

/// SYNs to the relay's ORPort from a new spoofed (address, port) each, 100 ns apart.
private struct SpoofedSyns {
    private var s: PacketSummary = {
        var s = summaries()[0]
        s.tcpFlags = 0x02
        return s
    }()
    private var x: UInt64 = 0x9E37_79B9_7F4A_7C15

    mutating func next() -> PacketSummary {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        s.src = IPAddress(ipv4: UInt32(truncatingIfNeeded: x))
        s.srcPort = PortNumber(UInt16(truncatingIfNeeded: x >> 40))
        s.timestampNanos &+= 100
        return s
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.mallocCountTotal, .wallClock, .instructions],
        maxDuration: .seconds(2), maxIterations: 200)

    // The harness's own allocations per sample (the same constant appears in
    // every benchmark): a piece allocates nothing per packet iff its count
    // equals this one's.
    Benchmark("baseline: empty loop") { benchmark in
        var sum = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for i in 0..<packetsPerIteration { sum &+= i }
        }
        blackHole(sum)
    }

    // The control: one malloc per sample of 10,000 packets, so its count
    // must be the empty loop's plus exactly 1. It shows the counter counts
    // (if the interposer stopped counting, every piece would read the same 0
    // as the empty loop and pass; this one would not) and that the gate sees
    // a single allocation.
    Benchmark("control: one allocation per 10,000 packets") { benchmark in
        var sum = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let p = malloc(16)
            blackHole(p)
            for i in 0..<packetsPerIteration { sum &+= i }
            free(p)
        }
        blackHole(sum)
    }

    Benchmark("decoder: Ethernet/IPv4/TCP") { benchmark in
        var decoder = PacketDecoder(linkType: .ethernet)
        var sum: UInt64 = 0
        frames.withUnsafeBufferPointer { all in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for i in 0..<packetsPerIteration {
                    // A named copy (a retain, no allocation): the span must not outlive its array.
                    let frame = all[i & 4095]
                    sum &+= UInt64(decoder.decode(frame.span, wireLength: 1514, timestampNanos: 0).payloadLength)
                }
            }
        }
        blackHole(sum)
    }

    Benchmark("classifier") { benchmark in
        let classifier = Classifier(model)
        let input = summaries()
        var sum = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for i in 0..<packetsPerIteration { sum &+= classifier.classify(input[i & 4095]).relay }
        }
        blackHole(sum)
    }

    Benchmark("ring: push and bulk consume") { benchmark in
        let ring = SPSCRing<PacketSummary>(capacity: 4096, publishBatch: 32)
        let input = summaries()
        var sum: UInt64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for i in 0..<packetsPerIteration {
                ring.push(input[i & 4095])
                if i & 255 == 255 { ring.publish(); ring.consume { sum &+= UInt64($0.wireLength) } }
            }
            ring.publish()
            ring.consume { sum &+= UInt64($0.wireLength) }
        }
        blackHole(sum)
    }

    // The whole per-packet step after decoding (classify once per flow and
    // direction, count, track), through the call the live fanout path makes
    // (`FlowTable.countAndTrack`); the engine's worker makes the same step
    // with the reader's hash and listener code. The flow table has no
    // separate entry point: this is the table's benchmark too.
    Benchmark("worker step: count and track, established flows") { benchmark in
        let counter = PacketCounter(classifier: Classifier(model), block: CounterBlock(layout: CounterLayout(relayCount: 2)))
        let table = FlowTable(capacity: 1 << 16, relayCount: 2)
        var input = summaries()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for i in 0..<packetsPerIteration {
                input[i & 4095].timestampNanos &+= 1000
                table.countAndTrack(input[i & 4095], counter: counter)
            }
        }
        blackHole(table.occupancy)
    }

    Benchmark("worker step: count and track, SYN flood under eviction") { benchmark in
        let counter = PacketCounter(classifier: Classifier(model), block: CounterBlock(layout: CounterLayout(relayCount: 2)))
        let table = FlowTable(capacity: 1 << 12, relayCount: 2)
        var flood = SpoofedSyns()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<packetsPerIteration {
                let s = flood.next()
                table.countAndTrack(s, counter: counter)
            }
        }
        blackHole(table.evictions)
    }

    // A live table starts at 4,096 entries and splits a bucket per new flow
    // while more than a quarter is in use: a flood makes it grow through its
    // first samples (to 2^18 entries, past 65,536 flows held), then evict. A
    // split moves entries within memory reserved at start, never a malloc.
    Benchmark("worker step: count and track, SYN flood into a growing table") { benchmark in
        let counter = PacketCounter(classifier: Classifier(model), block: CounterBlock(layout: CounterLayout(relayCount: 2)))
        let table = FlowTable(capacity: 1 << 18, relayCount: 2, growth: .growing)
        var flood = SpoofedSyns()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<packetsPerIteration {
                let s = flood.next()
                table.countAndTrack(s, counter: counter)
            }
        }
        blackHole(table.bytesActive)
    }
}

