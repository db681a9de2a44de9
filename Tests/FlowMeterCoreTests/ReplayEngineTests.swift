import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterCore

@Suite struct ReplayEngineTests {
    static let smallTable = 1 << 16

    func replay(_ files: [String], workers: Int, capacity: Int = smallTable,
                model: HostModel = EngineFixtures.model) -> EngineResult {
        ReplayEngine.replay(files: files, model: model, workers: workers, flowTableCapacity: capacity)
    }

    @Test func replayCountsEveryPacketOfTheCorpusExactlyOnceWithAnyWorkerCount() {
        let files = EngineFixtures.corpusFiles(limit: 60)
        #expect(files.count == 60)
        for workers in [1, 3] {
            let r = replay(files, workers: workers, model: HostModel())
            #expect(r.counters.accountedPackets == r.totals.packets)
            #expect(r.counters.accountedBytes == r.totals.bytes)
            #expect(r.ringDrops.allSatisfy { $0 == 0 })
            #expect(r.workers == workers)
        }
    }

    @Test func replayWithOneTwoAndFourWorkersGivesIdenticalCounters() throws {
        let mix = try EngineFixtures.torMix(opened: 3000, unanswered: 700, reset: 300, open: 200)
            .write(named: "determinism-mix.pcap")
        // Each input is replayed on its own: determinism needs capture time
        // that does not run backwards (docs/engine.md), which holds within a capture.
        for input in [[mix]] + EngineFixtures.corpusFiles(limit: 25).map({ [$0] }) {
            let results = [1, 2, 4].map { replay(input, workers: $0) }
            for r in results.dropFirst() {
                #expect(r.counters == results[0].counters, "\(input)")
                #expect(r.connections.withoutPeak == results[0].connections.withoutPeak, "\(input)")
                #expect(r.totals == results[0].totals)
                // The sum of per-worker peaks is an upper bound of the one-worker peak.
                #expect(r.connections.total(.peak) >= results[0].connections.total(.peak))
            }
        }
    }

    @Test func replayCountsConnectionsOfAGeneratedMixAgainstItsGroundTruth() throws {
        let capture = EngineFixtures.torMix(opened: 2000, unanswered: 500, reset: 250, open: 100)
        let path = try capture.write(named: "ground-truth-mix.pcap")
        for workers in [1, 2] {
            let r = replay([path], workers: workers)
            let c = r.connections
            #expect(c.value(relay: 1, category: .orInbound, .opened) == 2100)
            #expect(c.value(relay: 1, category: .orInbound, .unanswered) == 750)
            #expect(c.value(relay: 1, category: .orInbound, .closed) == 2000)
            #expect(c.value(relay: 1, category: .orInbound, .active) == 100)
            #expect(c.total(.opened) == 2100)
            #expect(r.totals.packets == UInt64(capture.packets))
            #expect(r.counters.classifiedBytes == capture.wireBytes)
            #expect(r.flowTable.evictions == 0)
        }
    }

    @Test func aSynFloodStaysInsideTheFlowTableBoundAndKeepsBytesExact() throws {
        var flood = TestCapture()
        var rng = SeededRandom(seed: 99)
        let floodPackets = 300_000
        var t: Int64 = 1_700_000_000_000_000
        // A few real connections first, then spoofed SYNs, then the real ones close.
        for p in 0..<20 {
            let client = 0x5DB8_0000 + UInt32(p)
            flood.add(src: client, sport: 40000, dst: EngineFixtures.relayAddress, dport: 9001, flags: .syn, micros: t)
            flood.add(src: EngineFixtures.relayAddress, sport: 9001, dst: client, dport: 40000, flags: [.syn, .ack], micros: t)
            flood.add(src: client, sport: 40000, dst: EngineFixtures.relayAddress, dport: 9001, flags: .ack, micros: t)
            t += 1
        }
        for _ in 0..<floodPackets {
            let r = rng.next()
            flood.add(src: UInt32(truncatingIfNeeded: r), sport: UInt16(truncatingIfNeeded: r >> 32),
                      dst: EngineFixtures.relayAddress, dport: 9001, flags: .syn, micros: t)
            t += 1
        }
        for p in 0..<20 {
            let client = 0x5DB8_0000 + UInt32(p)
            flood.add(src: client, sport: 40000, dst: EngineFixtures.relayAddress, dport: 9001, flags: [.fin, .ack], micros: t)
            flood.add(src: EngineFixtures.relayAddress, sport: 9001, dst: client, dport: 40000, flags: [.fin, .ack], micros: t)
        }
        let path = try flood.write(named: "syn-flood.pcap")
        let bound = FlowTableConfiguration(capacity: 8192)
        for workers in [1, 2] {
            let r = replay([path], workers: workers, capacity: bound.capacity)
            #expect(r.flowTable.capacity <= bound.capacity)
            #expect(r.flowTable.bytesReserved <= bound.bytesReserved)
            #expect(r.flowTable.evictions >= UInt64(floodPackets - bound.capacity))
            #expect(r.counters.classifiedBytes == flood.wireBytes)
            #expect(r.counters.value(CounterSlot(relay: 1, category: .orInbound, direction: .inbound), .packets)
                    == UInt64(floodPackets + 60))
            let c = r.connections
            #expect(c.value(relay: 1, category: .orInbound, .unanswered) == UInt64(floodPackets))
            #expect(c.value(relay: 1, category: .orInbound, .opened) == 20)
            #expect(c.value(relay: 1, category: .orInbound, .closed) == 20)
        }
    }

    @Test func aMissingFileIsReportedAndTheNextFileIsStillCounted() throws {
        let path = try EngineFixtures.torMix(opened: 10, unanswered: 0, reset: 0, open: 0).write(named: "after-missing.pcap")
        let r = replay(["/nonexistent/flowmeter.pcap", path], workers: 2)
        #expect(r.errors.count == 1)
        #expect(r.totals.packets == 70)
        #expect(r.counters.accountedPackets == 70)
    }

    @Test func aLivePipelineThatNeverWaitsCountsWhatItDrops() {
        var config = EngineConfiguration(workers: 1, flowTable: FlowTableConfiguration(capacity: 1024))
        config.ringCapacity = 8
        config.publishBatch = 4
        let pipeline = EnginePipeline(model: HostModel(), configuration: config)
        // Not started: nothing drains the ring, so all but its capacity drop.
        var s = PacketSummary()
        s.outcome = .nonIP
        s.wireLength = 60
        var accepted = 0
        for _ in 0..<100 where pipeline.offer(s) { accepted += 1 }
        #expect(accepted == 8)
        #expect(pipeline.snapshot().ringDrops == [92])
        pipeline.start()
        let end = pipeline.finish(endTimestampNanos: nil)
        #expect(end.counters.accountedPackets == 8)
    }
}
