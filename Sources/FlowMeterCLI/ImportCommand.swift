import ArgumentParser
import FlowMeterAccounting
import FlowMeterAgent
import FlowMeterFormat
import FlowMeterReports
import FlowMeterStore
import Foundation

/// `flowmeter import`: seeds the current period from tor's state file or
/// vnstat, so an agent installed mid-period reports the whole period.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Seed the current period's counts from tor's state file or vnstat (for an agent installed mid-period).",
        discussion: """
            --tor-state reads AccountingIntervalStart and AccountingBytesRead/WrittenInInterval from a relay's \
            DataDirectory/state (Tor-layer bytes, filed under --relay). --vnstat-json reads `vnstat --json` \
            output (vnstat 2.x), --vnstat-db vnstat's SQLite file; both give the interface's current month \
            (wire bytes, filed under --relay, default host). Forecasts and reports of a quota whose period \
            starts with the seed count it in place of FlowMeter's own buckets before the seed's end, and \
            say so. Importing again replaces the earlier seed for the same relay and period. The store is \
            written while the agent is stopped (it holds the store while it runs); started as root, the \
            import writes as the owner of the store's directory (flowmeter), so every file there stays the agent's.
            """)

    @Option(help: ArgumentHelp("The accounting store to write (default: the one run writes with this --config); stop the agent first.",
                               valueName: "FILE")) var db: String?
    @Option(help: ArgumentHelp("A tor state file (needs --relay).", valueName: "FILE")) var torState: String?
    @Option(help: ArgumentHelp("`vnstat --json` output.", valueName: "FILE")) var vnstatJson: String?
    @Option(help: ArgumentHelp("vnstat's database, e.g. /var/lib/vnstat/vnstat.db (needs --interface).", valueName: "FILE")) var vnstatDb: String?
    @Option(help: ArgumentHelp("The vnstat interface.", valueName: "IF")) var interface: String?
    @Option(help: ArgumentHelp("Relay label to file the counts under (as in the host model).", valueName: "NAME")) var relay: String?
    @OptionGroup var configOptions: ConfigOptions

    func validate() throws {
        guard [torState, vnstatJson, vnstatDb].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --tor-state FILE, --vnstat-json FILE, --vnstat-db FILE")
        }
        if torState != nil && relay == nil { throw ValidationError("--tor-state needs --relay NAME: the relay whose state file it is") }
        if vnstatDb != nil && interface == nil { throw ValidationError("--vnstat-db needs --interface IF") }
    }

    func run() throws {
        let seed: ImportedUsage
        do {
            if let path = torState {
                let written = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date()
                let text = String(decoding: try Self.readInput(path, what: "tor state file"), as: UTF8.self)
                seed = try UsageImporter.torState(text, relay: relay!, writtenAt: written)
            } else if let path = vnstatJson {
                seed = try UsageImporter.vnstatJSON(try Self.readInput(path, what: "vnstat JSON"), interface: interface, relay: relay ?? "host")
            } else {
                seed = try UsageImporter.vnstatDatabase(path: vnstatDb!, interface: interface!, relay: relay ?? "host")
            }
        } catch let e as ImportError {
            throw CLIError(e.description)
        }
        let path = try db ?? configOptions.defaultStorePath()
        try becomeOwner(ofDirectoryOf: path)
        let store: AccountingStore
        do { store = try AccountingStore(path: path) } catch StoreError.writerBusy {
            throw CommandFailure.data("\(path): the agent is running and holds the store (one writer at a time); "
                           + "stop it (systemctl stop flowmeter), import, then start it again")
        }
        try store.storeImported(seed)
        try store.close()
        print("imported from \(seed.source.rawValue) for \(seed.relay): \(seed.read) bytes read, \(seed.written) bytes written, "
              + "\(Format.iso8601(seed.start)) – \(Format.iso8601(seed.end))")
    }

    /// Far above any tor state file (a few KB) or `vnstat --json` (a few MB).
    static let largestInput = 256 << 20

    /// A regular file's bytes, at most `largestInput`: a FIFO would block the
    /// read and a device never end, so both are refused before opening.
    static func readInput(_ path: String, what: String) throws -> Data {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw CLIError("cannot read \(what) '\(path)': \(Diagnostics.reason(error))")
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            throw CLIError("\(what) '\(path)' is not a regular file (a FIFO or a device?); refusing to read it")
        }
        guard let size = attributes[.size] as? Int, size <= largestInput else {
            throw CLIError("\(what) '\(path)' is larger than \(largestInput >> 20) MiB; refusing to read it")
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIError("cannot read \(what) '\(path)': \(Diagnostics.reason(error))")
        }
    }

    /// Started as root, write as the owner of the store's directory (the
    /// sources are read already): a file SQLite makes there (the store, its
    /// -wal) must be the agent's, or the agent cannot open it at its next start.
    private func becomeOwner(ofDirectoryOf path: String) throws {
        guard geteuid() == 0 else { return }
        let directory = (path as NSString).deletingLastPathComponent
        var st = stat()
        guard stat(directory.isEmpty ? "." : directory, &st) == 0, st.st_uid != 0,
              let owner = PrivilegeDrop.account(uid: st.st_uid) else { return }
        do { try PrivilegeDrop.drop(to: owner, keepNetRaw: false) } catch {
            throw CLIError("cannot write as \(owner.name), the owner of \(directory): \(error)")
        }
    }
}
