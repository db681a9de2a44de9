import Testing
import FlowMeterCore
@testable import FlowMeterCapture

struct CaptureWaitTests {
    @Test func theDefaultRingGathersForTenMillisecondsAndOneUnder16MiBNotAtAll() {
        #expect(LiveCaptureOptions().gatherNanos == 10_000_000)  // 32 MiB
        #expect(LiveCaptureOptions(bufferBytes: 16 << 20).gatherNanos == 10_000_000)
        #expect(LiveCaptureOptions(bufferBytes: 1 << 30).gatherNanos == 10_000_000)
        #expect(LiveCaptureOptions(bufferBytes: (16 << 20) - 1).gatherNanos == 0)
        #expect(LiveCaptureOptions(bufferBytes: 4 << 20).gatherNanos == 0)
    }

    @Test func anIdleRingIsWaitedForInPollNeverBySleeping() {
        var w = CaptureWait(gatherNanos: 10_000_000)
        for _ in 0..<5 {
            w.read(packets: 0)
            #expect(w.next() == .poll)
        }
    }

    @Test func aRingEmptiedUnderTrafficGathersAndKeepsGatheringWhileEachSleepFindsPackets() {
        var w = CaptureWait(gatherNanos: 10_000_000)
        w.read(packets: 1600); w.read(packets: 0)
        #expect(w.next() == .gather(nanos: 10_000_000))
        for n: Int32 in [4800, 1, 3200, 1600] {
            w.read(packets: n); w.read(packets: 0)
            #expect(w.next() == .gather(nanos: 10_000_000))
        }
    }

    @Test func aSleepAfterWhichTheRingIsStillEmptyMakesTheNextEightWaitsPollsThenGatheringIsTriedAgain() {
        var w = CaptureWait(gatherNanos: 2_000_000)
        w.read(packets: 1600); w.read(packets: 0)
        #expect(w.next() == .gather(nanos: 2_000_000))
        w.read(packets: 0)  // nothing came during the sleep
        for _ in 0..<CaptureWait.backoff {
            #expect(w.next() == .poll)
            w.read(packets: 1600); w.read(packets: 0)
        }
        #expect(w.next() == .gather(nanos: 2_000_000))
        w.read(packets: 0)
        #expect(w.next() == .poll)
    }

    @Test func withoutAGatherTimeTrafficIsWaitedForInPollAsLibpcapWould() {
        var w = CaptureWait(gatherNanos: 0)
        w.read(packets: 1600); w.read(packets: 0)
        #expect(w.next() == .poll)
    }
}
