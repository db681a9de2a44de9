import Foundation
import Synchronization
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// A capture thread whose interface is missing retries with backoff; its
/// log says so once, with the reason, and not again at every retry.
@Suite struct CaptureStateChangeLogTests {
    @Test func aFailedReopenIsReportedOnceWithTheReasonNotAtEveryRetry() throws {
        let changes = Mutex<[CaptureStateChange]>([])
        let slot = GenerationSlot(CountingGeneration(number: 1, model: HostModel(), workers: 1,
                                                     flowTable: FlowTableConfiguration(capacity: FlowTable.bucketSize)))
        let worker = CaptureWorker(interface: "fmgone0", index: 0, options: LiveCaptureOptions(), fanoutGroup: nil,
                                   slot: slot, onStateChange: { c in changes.withLock { $0.append(c) } })
        worker.start(with: worker.openInitialHandle())
        // Retries at 0.5 s and 1.5 s after the start: three failed opens in all.
        Thread.sleep(forTimeInterval: 2.0)
        worker.stop()
        let seen = changes.withLock { $0 }
        let status = worker.status()
        #expect(status.gaps == 1)
        let reason = try #require(status.lastError)
        #expect(seen == [.down(interface: "fmgone0", worker: 0, reason: reason)], "\(seen)")
        #expect(seen.first?.description.hasPrefix("capture on fmgone0 (thread 0) is down: \(reason); retrying") == true)
    }

    /// The agent serves `/metrics` before its capture threads run; a handle
    /// already open then is up, not a gap (a loaded CI machine once scraped
    /// `flowmeter_capture_up 0` in that window).
    @Test(.enabled(if: LiveHarness.canRun, Comment(rawValue: LiveHarness.skipReason)))
    func aHandleIsUpFromTheMomentItOpensNotFromItsFirstRead() throws {
        let slot = GenerationSlot(CountingGeneration(number: 1, model: HostModel(), workers: 1,
                                                     flowTable: FlowTableConfiguration(capacity: FlowTable.bucketSize)))
        let worker = CaptureWorker(interface: "lo", index: 0, options: LiveCaptureOptions(), fanoutGroup: nil, slot: slot)
        #expect(worker.status().up == false)
        let opened = worker.openInitialHandle()
        #expect(throws: Never.self) { try opened.get() }
        #expect(worker.status().up == true)
        #expect(worker.status().gaps == 0)
        worker.start(with: opened)
        worker.stop()
        #expect(worker.status().up == false)
        #expect(worker.status().gaps == 0)
    }

    /// libpcap checks a vanished device by its name: once a device of the
    /// same name is back, a socket bound to the deleted one reads nothing,
    /// reports no error and would pass for up. Its binding says otherwise.
    @Test(.enabled(if: LiveHarness.canRun, Comment(rawValue: LiveHarness.skipReason)))
    func aHandleOnADeletedDeviceIsNotBoundToTheLiveOneEvenWhenItsNameIsBack() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let name = veth.meterInterface
        let (before, after, dispatched) = try inNetworkNamespace(veth.meter) { () throws -> (Bool, Bool, Int32) in
            let handle = try LiveCaptureHandle(interface: name, options: LiveCaptureOptions(), fanoutGroup: nil)
            _ = handle.setNonblocking()
            let before = handle.isBoundToLiveDevice
            try veth.deleteLink()
            try veth.createLink()
            let counter = LiveBatchCounter(linkType: handle.linkType, slot: GenerationSlot(CountingGeneration(
                number: 1, model: HostModel(), workers: 1, flowTable: FlowTableConfiguration(capacity: FlowTable.bucketSize))), index: 0, pipeline: nil)
            // The error libpcap noticed is taken, and the name is there again.
            var rc: Int32 = 0
            for _ in 0..<3 { rc = counter.dispatch(handle); if rc < 0 { break } }
            return (before, handle.isBoundToLiveDevice, rc)
        }
        #expect(before)
        #expect(!after, "a socket of the deleted device still passed for bound (last dispatch: \(dispatched))")
    }

    @Test func aChangedReasonAndTheReturnAreEachOneLine() {
        #expect(CaptureStateChange.stillDown(interface: "eth0", worker: 1, reason: "r2").description
                == "capture on eth0 (thread 1) is still down, now: r2")
        #expect(CaptureStateChange.up(interface: "eth0", worker: 1, seconds: 4.4).description
                == "capture on eth0 (thread 1) is up again after 4 s down")
    }
}
