import FlowMeterCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Counts the agent could not write when it stopped (a full disk, a failing
/// store), kept beside its state so the next start merges them into the
/// store exactly once (docs/storage.md, "Stopping when the store cannot be
/// written"). Labels and counts only, like the store: no address, no port.
///
/// Exactly once: each spill has an id, and merging writes the counts and the
/// state row `spill/ID` in one transaction; a spill whose id is already there
/// is only deleted.
public struct SpillFile: Codable, Sendable, Equatable {
    public struct Bucket: Codable, Sendable, Equatable {
        public var resolutionSeconds: Int
        public var startUTC: Int64
        public var relay: String
        public var category: String
        public var direction: String
        public var packets: UInt64
        public var bytes: UInt64
        public var payloadBytes: UInt64
        public var torPayloadBytes: UInt64
    }
    public struct Gap: Codable, Sendable, Equatable {
        public var startUTC: Int64
        public var endUTC: Int64
        public var reason: String
    }

    public static let currentVersion = 1
    /// Names of spill files: `unsaved-counts-ID.json` in the state directory.
    public static let prefix = "unsaved-counts-"
    /// Far beyond any spill (a few hundred buckets): a larger file is not ours.
    static let largest = 64 << 20

    public var version = SpillFile.currentVersion
    public var id: String
    /// The store the counts belong to (as the agent was given it).
    public var database: String
    /// The clock of the flush that failed (UTC seconds): the counts run to it.
    public var clockUTC: Int64
    public var buckets: [Bucket]
    public var gaps: [Gap]
    public var state: [String: String]

    /// The counts of `batch` (its surge spans are not kept: they are not counts).
    public init(_ batch: FlushBatch, database: String, id: String = UUID().uuidString.lowercased()) {
        self.id = id
        self.database = database
        clockUTC = batch.clockUTC
        buckets = batch.deltas.map { d in
            let (l, c) = (d.cell.labels, d.cell.counts)
            return Bucket(resolutionSeconds: d.resolution.rawValue, startUTC: d.startUTC, relay: l.relay,
                          category: l.category.label, direction: l.direction.label, packets: c.packets, bytes: c.bytes,
                          payloadBytes: c.payloadBytes, torPayloadBytes: c.torPayloadBytes)
        }
        gaps = batch.gaps.map { Gap(startUTC: $0.startUTC, endUTC: $0.endUTC, reason: $0.reason.rawValue) }
        state = batch.state
    }

    /// The state row that marks this spill as merged.
    var mergedKey: String { "spill/" + id }

    /// The batch to write, with the marker; throws for a value FlowMeter
    /// never writes (the file is checked like any input).
    func batch() throws -> FlushBatch {
        var b = FlushBatch(clockUTC: clockUTC)
        for x in buckets {
            guard let category = Category(label: x.category), let direction = Direction(label: x.direction),
                  x.resolutionSeconds > 0, x.resolutionSeconds <= 86_400, 86_400 % x.resolutionSeconds == 0 else {
                throw StoreError.readFailed(path: database, reason: "spill \(id) holds a bucket FlowMeter never writes")
            }
            b.deltas.append(BucketDelta(resolution: BucketResolution(rawValue: x.resolutionSeconds), startUTC: x.startUTC,
                                        cell: Cell(relay: x.relay, category: category, direction: direction,
                                                   CellCounts(packets: x.packets, bytes: x.bytes, payloadBytes: x.payloadBytes,
                                                              torPayloadBytes: x.torPayloadBytes))))
        }
        b.gaps = gaps.map { GapRecord(startUTC: $0.startUTC, endUTC: $0.endUTC, reason: GapReason(rawValue: $0.reason)) }
        b.state = state
        b.state[mergedKey] = String(clockUTC)
        return b
    }

    /// Packets in the finest resolution's buckets (what the log says was kept).
    public var packets: UInt64 {
        let finest = buckets.map(\.resolutionSeconds).min()
        return buckets.filter { $0.resolutionSeconds == finest }.reduce(0) { $0 &+ $1.packets }
    }

    /// Writes the spill into `directory` (0600, fsynced, then renamed into
    /// place, so a half-written spill is never merged) and returns its path.
    public func write(in directory: String) throws -> String {
        let path = directory + "/" + Self.prefix + id + ".json"
        let temp = path + ".tmp"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(self)
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Self.posix("cannot create \(temp)") }
        defer { Glibc.close(fd) }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(fd) == 0 else {
            let e = Self.posix("cannot write \(temp)")
            unlink(temp)
            throw e
        }
        guard rename(temp, path) == 0 else {
            let e = Self.posix("cannot rename \(temp)")
            unlink(temp)
            throw e
        }
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { _ = fsync(dir); Glibc.close(dir) }
        return path
    }

    /// Spill files waiting in `directory`, oldest name first.
    public static func pending(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.sorted().map { directory + "/" + $0 }
    }

    /// Reads a spill file: a regular file of at most 64 MiB, FlowMeter's format.
    public static func read(_ path: String) throws -> SpillFile {
        guard DatabaseFile.kind(path) == .regular,
              let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size <= largest else {
            throw StoreError.readFailed(path: path, reason: "not a spill file FlowMeter writes (not a regular file of at most 64 MiB)")
        }
        let decoder = JSONDecoder()
        do {
            let spill = try decoder.decode(SpillFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            guard spill.version == currentVersion else {
                throw StoreError.readFailed(path: path, reason: "spill version \(spill.version) is not \(currentVersion)")
            }
            return spill
        } catch let e as StoreError {
            throw e
        } catch {
            // The decoder's text can quote the file (a key on its coding
            // path): StoreError's description makes it printable and short.
            throw StoreError.readFailed(path: path, reason: "not a spill file FlowMeter writes (\(error))")
        }
    }

    static func posix(_ what: String) -> SpillError {
        SpillError(description: "\(what): \(String(cString: strerror(errno)))")
    }
}

/// Why a spill file could not be written.
public struct SpillError: Error, CustomStringConvertible {
    public var description: String
}
