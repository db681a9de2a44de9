import FlowMeterCore
import FlowMeterReports
import Foundation

/// The one status line of a long `replay` on standard error: files done,
/// packets, bytes, rate and time left (from the share of the files' bytes
/// read so far). Drawn at most four times a second; only when standard
/// error is a terminal and the output is not `--json` (the caller decides).
final class ReplayProgress {
    private let totalFileBytes: Int64
    private let fileCount: Int
    private let started: Date
    private var minimumInterval: TimeInterval = 0.25
    private var lastDrawn = Date.distantPast
    /// Bytes and packets of the files already finished.
    private var doneFileBytes: Int64 = 0
    private var donePackets: UInt64 = 0
    private var doneBytes: UInt64 = 0
    /// The capture being read: a new object, another path, or a read
    /// position that did not advance starts the next file (its capture may
    /// reuse the last one's memory, and a file named twice is read twice).
    private var current: ObjectIdentifier? = nil
    private var lastConsumed: Int64 = 0
    private var currentPath: String? = nil
    private var currentTotals = ReadTotals()
    private var currentSize: Int64 = 0
    private var filesDone = 0

    init(files: [String], now: Date = Date()) {
        fileCount = files.count
        totalFileBytes = files.reduce(0) { sum, path in
            sum + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0)
        }
        started = now
    }

    /// The callback `ReplayEngine` calls while reading one file.
    func update(path: String, capture: OfflineCapture, totals: ReadTotals, now: Date = Date()) {
        // Within one file each report is 2^20 packets further on, so a read
        // position that did not advance means the next file.
        if current != ObjectIdentifier(capture) || path != currentPath || capture.bytesConsumed <= lastConsumed {
            if current != nil { finishFile() }
            current = ObjectIdentifier(capture)
            currentPath = path
            currentSize = capture.fileSize
        }
        currentTotals = totals
        lastConsumed = capture.bytesConsumed
        guard now.timeIntervalSince(lastDrawn) >= minimumInterval else { return }
        lastDrawn = now
        Diagnostics.write("\r\u{1B}[K" + line(consumed: capture.bytesConsumed, now: now))
    }

    /// The reader reports every 2^20 packets, not at a file's end, so the
    /// tail of a finished file is estimated from its share of the file's
    /// size (the report printed afterwards has the exact counts).
    private func finishFile() {
        let scale = lastConsumed > 0 ? max(1, Double(currentSize) / Double(lastConsumed)) : 1
        filesDone += 1
        doneFileBytes += currentSize
        donePackets += UInt64(Double(currentTotals.packets) * scale)
        doneBytes += UInt64(Double(currentTotals.bytes) * scale)
        currentTotals = ReadTotals()
        lastConsumed = 0
    }

    /// "file 2/5  1234567 packets  1.2 GiB  310.0 MiB/s  42 % · 0:35 left", under 80 columns.
    func line(consumed: Int64, now: Date) -> String {
        let elapsed = max(0.001, now.timeIntervalSince(started))
        let readFileBytes = doneFileBytes + consumed
        let bytes = doneBytes + currentTotals.bytes
        let packets = donePackets + currentTotals.packets
        var text = "file \(min(filesDone + 1, fileCount))/\(fileCount)  \(packets) packets  \(SVG.bytes(Double(bytes)))"
        text += "  \(SVG.bytes(Double(readFileBytes) / elapsed, perSecond: true))"
        if totalFileBytes > 0 {
            let share = min(1, Double(readFileBytes) / Double(totalFileBytes))
            text += String(format: "  %d %%", Int(share * 100))
            if share > 0.01 {
                let left = elapsed * (1 - share) / share
                text += " · " + Self.duration(left) + " left"
            }
        }
        return text
    }

    /// Clears the line before the report is printed.
    func clear() { Diagnostics.write("\r\u{1B}[K") }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
