import FlowMeterStore
import Foundation
import FuzzSupport
import Logging

/// A spill file of arbitrary bytes, as a full disk or a killed agent leaves
/// one truncated or garbled in the state directory, read through its path
/// (the reader has no entry from bytes): a spill or a StoreError, never a
/// trap; a spill it gives encodes as the writer does and decodes as itself.
/// A spill that reads is then merged as the next start merges it (into a
/// store this process keeps, the spill's database made that store's), log
/// lines included: merged, merged before, or refused, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpillFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let path = FuzzInput.file(data, size, name: "unsaved-counts.json"),
          var spill = try? SpillFile.read(path) else { return 0 }
    _ = spill.packets
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let again = try? encoder.encode(spill)
    precondition(again.flatMap { try? JSONDecoder().decode(SpillFile.self, from: $0) } == spill,
                 "a spill that does not read back as itself: \(spill.id)")
    guard let merger = SpillMerger.shared else { return 0 }
    spill.database = merger.database
    guard let bytes = try? encoder.encode(spill) else { return 0 }
    let file = merger.directory + "/" + SpillFile.prefix + "fuzz.json"
    guard (try? bytes.write(to: URL(fileURLWithPath: file))) != nil else { return 0 }
    merger.accumulator.mergeSpills(in: merger.directory)
    unlink(file)  // refused spills stay, as they would for the next start
    return 0
}

/// One store for the whole run: a merge per input writes to it as an
/// agent's start would.
final class SpillMerger: Sendable {
    let directory: String
    let database: String
    nonisolated(unsafe) let accumulator: BucketAccumulator

    init?() {
        directory = "/tmp/flowmeter-fuzz-\(getpid())-spills"
        database = directory + "/accounting.db"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var quiet = Logger(label: "fuzz") { _ in Discarding() }
        quiet.logLevel = .trace
        guard let a = try? BucketAccumulator(path: database, relayLabels: ["host"], logger: quiet) else { return nil }
        accumulator = a
    }

    static let shared = SpillMerger()
}

/// Builds every message, at every level, and drops it: a message's text is
/// code the merge runs, and swift-log skips it below the logger's level (a
/// no-op handler's level is critical, so a trap in a notice went unseen).
struct Discarding: LogHandler {
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { nil } set {} }
    func log(event: LogEvent) { _ = event.message.description }
}
