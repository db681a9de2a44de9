import Foundation
import Synchronization
import Testing
import FlowMeterCoreTestSupport
@testable import FlowMeterCore

@Suite struct SPSCRingTests {
    /// Start indices to try for a ring of `capacity`: every slot near zero and
    /// every slot just below the `UInt` wrap, so runs cross it.
    static func starts(_ capacity: Int) -> [UInt] {
        let span = UInt(2 * capacity + 1)
        return Array(0..<span) + Array((UInt.max - span)...UInt.max)
    }

    /// The two consumer APIs, each reduced to "append up to `max` items to `out`".
    enum ConsumeAPI: CaseIterable, CustomStringConvertible {
        case consume, consumeBatch
        var description: String { self == .consume ? "consume" : "consumeBatch" }

        @discardableResult
        func take(_ ring: SPSCRing<Int>, max: Int = .max, into out: inout [Int]) -> Int {
            switch self {
            case .consume:
                return ring.consume(max: max) { out.append($0) }
            case .consumeBatch:
                var taken: [Int] = []
                let n = ring.consumeBatch(max: max) { batch in taken.append(contentsOf: batch) }
                out += taken
                return n
            }
        }
    }

    /// Every capacity, every start index near zero and just below the wrap,
    /// every fill level: each consumer API delivers the items in order, and a
    /// second lap from wherever the first left the indices does too.
    /// (`consumeBatch` stops at the end of the slot array, so it is drained in a loop.)
    @Test(arguments: ConsumeAPI.allCases)
    func everyCapacityStartAndCountDeliversItemsInOrder(_ api: ConsumeAPI) {
        for capacity in [1, 2, 4, 8, 16] {
            for start in Self.starts(capacity) {
                for count in 0...capacity {
                    let ring = SPSCRing<Int>(capacity: capacity, publishBatch: 3, startIndex: start)
                    for i in 0..<count { #expect(ring.tryPush(i)) }
                    if count == capacity { #expect(!ring.tryPush(-1)) }
                    ring.publish()
                    #expect(ring.approximateCount == count)
                    var out: [Int] = []
                    while api.take(ring, into: &out) > 0 {}
                    #expect(out == Array(0..<count), "\(api) capacity \(capacity) start \(start) count \(count)")
                    #expect(ring.approximateCount == 0)
                    #expect(ring.dropped == (count == capacity ? 1 : 0))
                    for i in 0..<capacity { #expect(ring.tryPush(100 + i)) }
                    ring.publish()
                    out.removeAll()
                    while api.take(ring, max: 3, into: &out) > 0 {}
                    #expect(out == Array(100..<(100 + capacity)), "\(api) second lap, capacity \(capacity) start \(start)")
                }
            }
        }
    }

    @Test func aBatchNeverCrossesTheEndOfTheSlotArray() {
        let ring = SPSCRing<Int>(capacity: 8, publishBatch: 1, startIndex: 5)
        for i in 0..<6 { ring.push(i) }
        var sizes: [Int] = []
        var out: [Int] = []
        while true {
            var batch: [Int] = []
            let n = ring.consumeBatch { batch.append(contentsOf: $0) }
            if n == 0 { break }
            sizes.append(n)
            out += batch
        }
        #expect(sizes == [3, 3])  // slots 5, 6, 7, then 0, 1, 2
        #expect(out == Array(0..<6))
    }

    @Test func waitUntilDrainedReturnsOnceTheConsumerHasFreedEverySlot() {
        let ring = SPSCRing<Int>(capacity: 64, publishBatch: 16)
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let consumed = Count()
        let consumer = Thread {
            var seen = 0
            while seen < 1000 {
                seen += ring.consumeBatch { batch in consumed.value.add(batch.count, ordering: .relaxed) }
            }
        }
        consumer.start()
        for i in 0..<1000 {
            ring.push(i)
            if i % 250 == 249 {
                ring.waitUntilDrained()
                #expect(consumed.value.load(ordering: .relaxed) == i + 1)
            }
        }
    }

    @Test func bulkConsumeTakesAtMostMaxItemsOldestFirst() {
        let ring = SPSCRing<Int>(capacity: 8, publishBatch: 1, startIndex: UInt.max - 2)
        for i in 0..<7 { ring.push(i) }
        var out: [Int] = []
        #expect(ring.consume(max: 5) { out.append($0) } == 5)
        #expect(out == [0, 1, 2, 3, 4])
        #expect(ring.consume(max: 5) { out.append($0) } == 2)
        #expect(ring.consume { out.append($0) } == 0)
        #expect(out == Array(0..<7))
    }

    @Test func itemsStayInvisibleUntilTheProducerPublishes() {
        let ring = SPSCRing<Int>(capacity: 16, publishBatch: 8)
        for i in 0..<3 { ring.push(i) }
        #expect(ring.consume { _ in } == 0)
        for i in 3..<8 { ring.push(i) }  // the 8th push publishes the batch
        #expect(ring.consume { _ in } == 8)
        ring.push(8)
        ring.close()  // close publishes what is pending
        #expect(ring.isClosed)
        #expect(ring.consume { _ in } == 1)
    }

    @Test func aFullRingDropsAndCountsInsteadOfBlocking() {
        let ring = SPSCRing<Int>(capacity: 4, publishBatch: 4)
        for i in 0..<10 { ring.tryPush(i) }
        #expect(ring.dropped == 6)
        var out: [Int] = []
        ring.consume { out.append($0) }
        #expect(out == [0, 1, 2, 3])
    }

    final class Tracked {
        static let alive = Atomic<Int>(0)
        init() { Self.alive.add(1, ordering: .relaxed) }
        deinit { Self.alive.subtract(1, ordering: .relaxed) }
    }

    @Test func deinitReleasesItemsStillQueuedPublishedOrNot() {
        let before = Tracked.alive.load(ordering: .relaxed)
        do {
            let ring = SPSCRing<Tracked>(capacity: 8, publishBatch: 4, startIndex: UInt.max - 1)
            for _ in 0..<6 { ring.push(Tracked()) }
            ring.consume(max: 2) { _ in }
            #expect(Tracked.alive.load(ordering: .relaxed) == before + 4)
        }
        #expect(Tracked.alive.load(ordering: .relaxed) == before)
    }

    /// Producer and consumer on two threads; the consumer checks order and a
    /// checksum. FLOWMETER_STRESS_LONG=1 runs 100 M items instead of 2 M.
    @Test func twoThreadsPassEveryItemInOrderUnderContention() {
        let long = ProcessInfo.processInfo.environment["FLOWMETER_STRESS_LONG"] == "1"
        let n: UInt64 = long ? 100_000_000 : 2_000_000
        for (capacity, batch) in [(4, 1), (64, 32), (1024, 64)] {
            let ring = SPSCRing<UInt64>(capacity: capacity, publishBatch: batch, startIndex: UInt.max - 1000)
            let done = DispatchSemaphore(value: 0)
            let producer = Thread {
                for i in 1...n { ring.push(i) }
                ring.close()
                done.signal()
            }
            producer.start()
            var expected: UInt64 = 1
            var sum: UInt64 = 0
            var outOfOrder = 0
            func check(_ v: UInt64) {
                if v != expected { outOfOrder += 1 }
                expected = v &+ 1
                sum &+= v
            }
            while true {
                if ring.consume(max: 100, check) > 0 { continue }
                if ring.isClosed {
                    while ring.consume(max: 100, check) > 0 {}
                    break
                }
                sched_yield()
            }
            done.wait()
            #expect(outOfOrder == 0)
            #expect(sum == n * (n + 1) / 2)
            #expect(ring.dropped == 0)
        }
    }

    @Test func aProducerThatNeverWaitsLosesOnlyWhatItCounts() {
        let n: UInt64 = 1_000_000
        let ring = SPSCRing<UInt64>(capacity: 16, publishBatch: 4)
        let pushedSum = Atomic<UInt64>(0)
        let done = DispatchSemaphore(value: 0)
        let producer = Thread {
            var s: UInt64 = 0
            for i in 1...n where ring.tryPush(i) { s &+= i }
            pushedSum.store(s, ordering: .relaxed)
            ring.close()
            done.signal()
        }
        producer.start()
        var received: UInt64 = 0
        var sum: UInt64 = 0
        var last: UInt64 = 0
        var increasing = true
        while true {
            let got = ring.consume { v in received += 1; sum &+= v; if v <= last { increasing = false }; last = v }
            if got == 0 {
                if ring.isClosed { while ring.consume({ v in received += 1; sum &+= v }) > 0 {}; break }
                sched_yield()
            }
        }
        done.wait()
        #expect(increasing)
        #expect(received + ring.dropped == n)
        #expect(sum == pushedSum.load(ordering: .relaxed))
    }

    @Test func aRingElementCarriesTheReadersCodeInTheSummarysTailPadding() {
        #expect(MemoryLayout<PacketSummary>.size <= 62)
        #expect(MemoryLayout<RoutedSummary>.size == 72)
    }
}

