import FlowMeterCore
import FlowMeterCapture
import FlowMeterConfig
import FlowMeterAccounting
import FlowMeterStore
import FlowMeterReports
import FlowMeterExport
import FlowMeterFormat
import FlowMeterTorControl
import CLinuxShim
import CPcapShim
import Foundation
import Logging
import NIOCore
import Synchronization

/// The live agent: capture threads (one per fanout member per interface)
/// counting into single-writer blocks, an HTTP endpoint reading them once per
/// scrape, SIGHUP reload, and a clean stop on SIGTERM/SIGINT that writes the
/// final counters. It never stops counting because an interface went away.
///
/// Lifecycle, in order (the order is what makes least privilege work):
/// check the named interfaces exist and CAP_NET_RAW is held, open capture
/// handles and read the token file as root → bind the listener → make and
/// hand over the state directory, drop to `user` keeping CAP_NET_RAW → open
/// the store → log "serving" → start capture threads → wait for signals →
/// stop threads → write final counters. Everything before the capture
/// threads start stops the start with an `AgentError` naming the cause.
public final class Agent: @unchecked Sendable {
    // @unchecked Sendable — Safe: mutable state is behind `state` (a Mutex);
    // the rest is immutable after init or itself Sendable.
    public typealias Loader = @Sendable () throws -> AgentConfiguration

    let logger: Logger
    private let loader: Loader
    private let clock: LiveClock
    let initial: AgentConfiguration
    private let slot: GenerationSlot
    private let workers: [CaptureWorker]
    private let interfaceDrops: InterfaceDropCounter
    public let interfaces: [String]
    /// The engine pipelines of the `rings` layout, one per interface.
    private let pipelines: [(interface: String, pipeline: EnginePipeline)]
    private let renderer = Mutex(PrometheusRenderer())
    private let startNanos: Int64
    /// Counts of a generation no worker writes to any more, merged by relay
    /// labels, so reloads do not accumulate counter blocks and flow tables.
    private struct Frozen {
        var labels: [String]
        var counters: CounterSnapshot
        var connections: ConnectionSnapshot
    }
    private struct State {
        /// Retired by a reload, with the monotonic instant; a worker may still
        /// finish the batch it was in, so they are frozen only after a grace.
        var retiring: [(generation: CountingGeneration, since: UInt64)] = []
        var frozen: [Frozen] = []
        var reloadsSucceeded: UInt64 = 0
        var reloadsFailed: UInt64 = 0
        var endpoint: HTTPEndpoint? = nil
    }
    private let state = Mutex(State())
    /// Opened after the privilege drop, so its files belong to the agent's user.
    private let store = Mutex<AgentStore?>(nil)
    private let stopRequested = DispatchSemaphore(value: 0)
    /// Asks each relay's tor for its own figures (started after the privilege drop).
    private let torControl = Mutex<TorControlPoller?>(nil)
    private let surges: AgentSurges
    private let dashboard: AgentDashboard

    public init(configuration: AgentConfiguration, loader: @escaping Loader, logger: Logger,
                clock: LiveClock = .system, sysfs: SysfsNet = SysfsNet()) throws(AgentError) {
        self.initial = configuration
        self.loader = loader
        self.logger = logger
        self.clock = clock
        let s = configuration.settings
        let missing = s.interfaces.filter { !sysfs.exists($0) }
        guard missing.isEmpty else { throw .noSuchInterface(missing: missing, available: sysfs.allInterfaces()) }
        let selection = InterfaceSelection.choose(explicit: s.interfaces, addresses: configuration.model.allLocalAddresses, sysfs: sysfs)
        for w in selection.warnings { logger.warning("\(w)") }
        guard !selection.interfaces.isEmpty else { throw .noInterfaces }
        for n in selection.notices(relayCount: configuration.model.relays.count) { logger.notice("\(n)") }
        interfaces = selection.interfaces
        // Fanout is the default layout (BENCHMARKS.md, "Live capture"): on the
        // 2-core machine measured at ~1 M pps, fanout dropped nothing while one
        // capture thread feeding the engine's rings dropped ~9 % (that thread
        // is the bottleneck) and cost ~1.4x the CPU per packet (the ring hop).
        // Fanout also keeps counting while one thread is descheduled (each
        // handle has its own kernel ring) and needs no one-producer-per-ring
        // bookkeeping when there are several interfaces.
        let rings = s.captureLayout == .rings
        let perInterface = rings ? 1 : (s.captureThreads == 0 ? Int(CLinuxShim_availableCPUs()) : s.captureThreads)
        slot = GenerationSlot(CountingGeneration(
            number: 1, model: configuration.model, workers: interfaces.count * perInterface,
            flowTable: Self.flowTableConfiguration(s)))
        var ws: [CaptureWorker] = []
        var ps: [(String, EnginePipeline)] = []
        for name in interfaces {
            let options = LiveCaptureOptions(
                snaplen: s.snaplen, bufferBytes: CaptureSizing.ringBytes(s, interface: name, handles: perInterface, sysfs: sysfs),
                timeoutMilliseconds: s.timeoutMilliseconds, bpfFilter: s.bpfFilter, handlesPerInterface: perInterface)
            let speed = sysfs.linkSpeedMbits(name).map { "\($0) Mbit/s" } ?? "unknown"
            let why = s.bufferBytes == nil ? "buffer_size auto, link speed \(speed)" : "buffer_size"
            logger.info("\(name): a \(options.bufferBytes >> 20) MiB ring per capture handle (\(why))")
            let group = perInterface > 1 ? fanoutGroupID(interfaceIndex: sysfs.interfaceIndex(name)) : nil
            let engineWorkers = s.captureThreads == 0 ? EngineConfiguration.defaultWorkers : s.captureThreads
            let engine = EngineConfiguration(workers: engineWorkers, flowTable: FlowTableConfiguration(capacity: s.flowTableMax))
            let pipeline = rings ? EnginePipeline(model: configuration.model, configuration: engine) : nil
            if let pipeline { ps.append((name, pipeline)) }
            for _ in 0..<perInterface {
                ws.append(CaptureWorker(interface: name, index: ws.count, options: options, fanoutGroup: group, slot: slot,
                                        pipeline: pipeline, clock: clock, onStateChange: Self.logCaptureChange(logger)))
            }
        }
        workers = ws
        pipelines = ps
        interfaceDrops = InterfaceDropCounter(interfaces: interfaces, sysfs: sysfs)
        startNanos = clock.wallNanos()
        surges = AgentSurges(settings: s.surge, logger: logger)
        dashboard = AgentDashboard(database: configuration.database, logger: logger)
    }

    /// Runs until SIGTERM or SIGINT (or `requestStop`); returns when the
    /// final counters are written.
    public func run(handleSignals: Bool = true) throws(AgentError) -> StatusDocument {
        // First: a SIGTERM while starting (systemctl stop right after start)
        // is a stop request the wait below sees, never lost.
        let sources = handleSignals ? installSignalHandlers() : []
        defer { for src in sources { src.cancel() } }
        Self.leaveRaisedPriority()
        var (opened, token) = try openAsRoot()
        let server = try listen(token: token)
        defer { server.close() }
        do throws(AgentError) {
            try dropPrivileges()
            try openStore()
        } catch {
            for w in workers { w.stop() }
            throw error
        }
        logServing(server)
        let ticker = count(&opened)
        stopRequested.wait()
        let final = stop(ticker)
        if let finalWriteFailure { throw finalWriteFailure }
        return final
    }

    /// 1. As root: capture handles and the token file. Without CAP_NET_RAW
    /// nothing can be captured, so that stops the start.
    private func openAsRoot() throws(AgentError) -> ([Result<LiveCaptureHandle, CaptureError>], String?) {
        let caps = CLinuxShim_effectiveCapabilities()
        if caps != UInt64.max && caps & (1 << UInt64(CLinuxShim_capNetRaw)) == 0 {
            throw .missingCapability("CAP_NET_RAW")
        }
        let opened = workers.map { $0.openInitialHandle() }
        for (w, r) in zip(workers, opened) {
            switch r {
            case .success(let h):
                if let warning = h.activationWarning { logger.warning("\(w.interface): \(warning)") }
            case .failure:
                break  // the worker logs it when it starts (CaptureStateChange.down)
            }
        }
        return (opened, try Self.readToken(initial.settings.bearerTokenFile))
    }

    /// 2. The listener (its event-loop thread is switched to the user by the drop below).
    private func listen(token: String?) throws(AgentError) -> MetricsServer {
        let s = initial.settings
        let endpoint = HTTPEndpoint(
            access: .init(policy: s.accessPolicy, token: token),
            // The handlers read what the ticker and the store's read queue
            // published last: none of them waits on the store.
            metrics: { [self] in
                var r = reading()
                r.quotas = quotas(r)
                r.store = store.withLock { $0 }?.health()
                r.surges = surges.statuses
                return renderer.withLock { Array($0.render(r)) }
            },
            status: { [self] in
                var r = reading()
                r.quotas = quotas(r)
                r.glance = dashboard.glance(r, quotas: r.quotas, now: Date())
                return StatusDocument(r).json()
            },
            dashboard: { [self] in
                let r = reading()
                return dashboard.page(r, quotas: quotas(r), now: Date())
            })
        state.withLock { $0.endpoint = endpoint }
        let address = s.listenHost.contains(":") ? "[\(s.listenHost)]:\(s.listenPort)" : "\(s.listenHost):\(s.listenPort)"
        let server: MetricsServer
        do {
            server = try MetricsServer(host: s.listenHost, port: s.listenPort, endpoint: endpoint)
        } catch let e as IOError {
            for w in workers { w.stop() }
            throw .listen(address: address, reason: errnoDescription(e.errnoCode))
        } catch {
            for w in workers { w.stop() }
            throw .listen(address: address, reason: "cannot listen (\(error))")
        }
        return server
    }

    /// Said once the store is open too, so "serving" means the start succeeded.
    private func logServing(_ server: MetricsServer) {
        let s = initial.settings
        logger.info("serving /metrics, /api/v1/status and the dashboard at / on \(s.listenHost):\(server.boundPort), access: \(s.accessPolicy)")
    }

    /// 3b. The accounting store, as the agent's user. One that cannot be
    /// opened now stops the start; one that fails later keeps the counts in
    /// memory and is retried (`flowmeter_store_up`).
    private func openStore() throws(AgentError) {
        guard let path = initial.database else {
            logger.notice("keeping no history (--no-db): report, forecast and check have nothing to read")
            return
        }
        do {
            let opened = try AgentStore(path: path, configuration: initial.storeConfiguration, labels: initial.model.relayLabels,
                                        quotas: initial.quotas, spillDirectory: initial.stateDirectory, logger: logger)
            store.withLock { $0 = opened }
        } catch let e as StoreError {
            throw .store(path: path, reason: Self.storeReason(e, path: path))
        } catch {
            throw .store(path: path, reason: "\(error)")
        }
        logger.info("storing history in \(path)")
    }

    /// The store's error without the path it already repeats.
    static func storeReason(_ e: StoreError, path: String) -> String {
        var text = e.description
        if text.hasPrefix(path + ": ") { text.removeFirst(path.count + 2) }
        return text
    }

    /// 4. Count: the once-a-second store ticker, then the capture threads.
    /// The handles go to their threads and nothing else keeps them: a thread
    /// closes its handle when the device vanishes, and a reference kept here
    /// would hold the dead socket and its kernel ring until the agent stops.
    private func count(_ opened: inout [Result<LiveCaptureHandle, CaptureError>]) -> DispatchSourceTimer {
        let ticker = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "flowmeter.store"))
        ticker.schedule(deadline: .now() + 1, repeating: 1)
        ticker.setEventHandler { [self] in
            if state.withLock({ Self.freezeRetired(&$0, now: clock.monotonicNanos()) }) { CLinuxShim_releaseFreeHeap() }
            let (r, now) = (reading(), Date())
            surges.tick(r, now: now)
            dashboard.observe(r, now: now)
            let current = store.withLock { $0 }
            current?.tick(r, now: now, surges: surges)
            current?.refreshReads(now: now, torControl: r.torControl) { [dashboard] quotas in
                dashboard.refresh(quotas: quotas, now: now)
            }
        }
        ticker.resume()
        startTorControl()
        for (_, p) in pipelines { p.start() }
        for (w, r) in zip(workers, opened) { w.start(with: r) }
        opened.removeAll()
        logger.info("capturing on \(interfaces.joined(separator: ", ")) with \(workers.count / interfaces.count) handle(s) each")
        return ticker
    }

    /// 5. Stop and write the final counters (rings drained first).
    private func stop(_ ticker: DispatchSourceTimer) -> StatusDocument {
        for w in workers { w.stop() }
        for (_, p) in pipelines { _ = p.finish(endTimestampNanos: nil) }
        ticker.cancel()
        torControl.withLock { $0?.stop() }
        let finalReading = reading()
        let written = store.withLock { $0 }?.close(finalReading, now: Date(), surges: surges) ?? .stored
        let final = StatusDocument(finalReading)
        writeFinal(final)
        switch written {
        case .stored: break
        case .spilled(let file, let packets): finalWriteFailure = .finalCountsNotStored(packets: packets, keptIn: file)
        case .lost(let packets, _): finalWriteFailure = .finalCountsNotStored(packets: packets, keptIn: nil)
        }
        return final
    }

    /// Set by `stop` when the final counts did not reach the store: `run`
    /// throws it after the status is written, so the exit status says so.
    private var finalWriteFailure: AgentError?

    public func requestStop() { stopRequested.signal() }

    /// Folds retired generations past their grace into `frozen` and lets
    /// them go, with their flow tables: run every second by the ticker, not
    /// only when someone reads, or an agent reloaded without scrapes or a
    /// store keeps every generation for ever. Returns whether it let one go:
    /// the caller then hands the freed heap back to the kernel (outside the
    /// lock), or a storm of reloads would leave the agent that much larger.
    private static func freezeRetired(_ st: inout State, now: UInt64) -> Bool {
        // A worker adopts a new generation at its next batch, and an idle one
        // is woken to adopt it (`adoptNow`), so after a few seconds nothing
        // writes to a retired one.
        let grace: UInt64 = 5_000_000_000
        for (g, since) in st.retiring where now &- since > grace {
            let counters = g.snapshot(), connections = g.connections()
            if let i = st.frozen.firstIndex(where: { $0.labels == g.relayLabels }) {
                st.frozen[i].counters += counters
                st.frozen[i].connections += connections
            } else {
                st.frozen.append(Frozen(labels: g.relayLabels, counters: counters, connections: connections))
            }
        }
        let before = st.retiring.count
        st.retiring.removeAll { now &- $0.since > grace }
        return st.retiring.count < before
    }

    /// One reading for both renderings.
    public func reading() -> AgentReading {
        var r = AgentReading()
        let now = clock.monotonicNanos()
        let (released, retiring, frozen, ok, failed, endpoint) = state.withLock { st in
            (Self.freezeRetired(&st, now: now), st.retiring.map(\.generation), st.frozen, st.reloadsSucceeded,
             st.reloadsFailed, st.endpoint)
        }
        if released { CLinuxShim_releaseFreeHeap() }
        for f in frozen {
            r.generations.append((f.labels, f.counters))
            r.connections.append((f.labels, f.connections, false))
        }
        let current = slot.load()
        for g in retiring + [current] {
            r.generations.append((g.relayLabels, g.snapshot()))
            r.connections.append((g.relayLabels, g.connections(), g === current))
        }
        for (name, p) in pipelines {
            let e = p.snapshot()
            // The engine counts with the relays it started with.
            r.generations.append((initial.model.relayLabels, e.counters))
            r.connections.append((initial.model.relayLabels, e.connections, true))
            for (i, d) in e.ringDrops.enumerated() { r.engineRingDrops.append((name, i, d)) }
        }
        r.workers = workers.map { $0.status() }
        let interfaceCounts = interfaceDrops.read()
        r.interfaceDrops = interfaceCounts.map { ($0.interface, $0.lost) }
        r.interfaceRxDropped = interfaceCounts.map { ($0.interface, $0.rxDropped) }
        r.startTimeSeconds = Double(startNanos) / 1e9
        r.nowSeconds = Double(clock.wallNanos()) / 1e9
        r.reloadsSucceeded = ok
        r.reloadsFailed = failed
        if let e = endpoint { (r.refusedByPolicy, r.refusedByToken) = e.refusals }
        r.torControl = torControl.withLock { $0 }?.statuses() ?? []
        return r
    }

    /// The quotas every view shows (metrics, status, dashboard, and `top`
    /// through the status): the store's last evaluation, with tor's latest
    /// bytes where its control port answers. Never waits on the store.
    private func quotas(_ r: AgentReading) -> [QuotaStatus] {
        store.withLock { $0 }?.quotaStatuses(torControl: r.torControl) ?? []
    }

    /// Polls tor's control ports, as the agent's user (the cookie must be readable by it).
    private func startTorControl() {
        guard !initial.torControl.isEmpty else { return }
        let poller = TorControlPoller(targets: initial.torControl, logger: logger) { [self] relay in
            let table = reading().cells
            var total: UInt64 = 0
            for c in Category.allCases { for d in Direction.allCases { total &+= table.value(relay: relay, c, d, .bytes) } }
            return total
        }
        torControl.withLock { $0 = poller }
        poller.start()
    }

    /// The generations' flow tables: growing up to `flow_table_max` entries;
    /// in the rings layout the engine's workers count, and the generation's
    /// own tables stay minimal.
    static func flowTableConfiguration(_ s: AgentSettings) -> FlowTableConfiguration {
        FlowTableConfiguration(capacity: s.captureLayout == .rings ? FlowTable.bucketSize : s.flowTableMax)
    }

    /// SIGHUP: reload the host model, access policy and token. Interfaces and
    /// capture options are fixed at start (the handles were opened as root);
    /// a change to them is logged as needing a restart.
    public func reload() {
        do {
            let c = try loader()
            let current = slot.load()
            let next = nextGeneration(c, after: current)
            var token: String? = nil
            do throws(AgentError) { token = try Self.readToken(c.settings.bearerTokenFile) } catch {
                logger.warning("\(error); keeping the previous token")
                token = state.withLock { $0.endpoint?.currentAccess.token }
            }
            state.withLock { st in
                if next != nil { st.retiring.append((current, clock.monotonicNanos())) }
                st.reloadsSucceeded += 1
                st.endpoint?.replaceAccess(.init(policy: c.settings.accessPolicy, token: token))
            }
            if let next {
                slot.publish(next)
                // Idle capture threads adopt it now, not at their next packet.
                for w in workers { w.adoptNow() }
            }
            let old = initial.settings
            let n = c.settings
            if !pipelines.isEmpty {
                logger.warning("capture_layout rings: the engine keeps the relays it started with until a restart; access policy reloaded")
            }
            if n.interfaces != old.interfaces || n.snaplen != old.snaplen || n.bufferBytes != old.bufferBytes
                || n.bufferBytesMax != old.bufferBytesMax
                || n.timeoutMilliseconds != old.timeoutMilliseconds || n.bpfFilter != old.bpfFilter
                || n.listenHost != old.listenHost || n.listenPort != old.listenPort || n.user != old.user {
                logger.warning("reloaded relays and access policy; capture, listen and user settings change only on restart")
            } else {
                logger.info("reloaded: \(c.model.relays.count) relay(s)\(next == nil ? " (unchanged: counting goes on as before)" : ""), access: \(c.settings.accessPolicy)")
            }
        } catch {
            state.withLock { $0.reloadsFailed += 1 }
            logger.error("reload failed, still counting with the previous configuration: \(error)")
        }
    }

    /// The generation a reload to `c` counts under from now on, or nil when
    /// `c` classifies exactly as `current` does (the same host model and
    /// table sizes): then nothing changes and nothing is made, so a storm of
    /// SIGHUPs costs parsing only. Same table sizes with another model: the
    /// tables are reused, emptied by each worker as it adopts the new
    /// generation (CountingGeneration), not made anew beside them.
    private func nextGeneration(_ c: AgentConfiguration, after current: CountingGeneration) -> CountingGeneration? {
        var sizing = c.settings
        sizing.captureLayout = initial.settings.captureLayout
        let flowTable = Self.flowTableConfiguration(sizing)
        if c.model == current.model && flowTable == current.flowTable { return nil }
        return CountingGeneration(number: current.number + 1, model: c.model, workers: workers.count,
                                  flowTable: flowTable, reusing: current)
    }

    private func installSignalHandlers() -> [DispatchSourceSignal] {
        let queue = DispatchQueue(label: "flowmeter.signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            src.setEventHandler { [self] in
                if sig == SIGHUP { reload() } else {
                    logger.info("signal \(sig): stopping")
                    requestStop()
                }
            }
            src.resume()
            sources.append(src)
        }
        return sources
    }

    private func writeFinal(_ doc: StatusDocument) {
        logger.info("stopped: \(doc.totals.packets) packets, \(Format.bytes(doc.totals.bytes)) (\(doc.totals.bytes) bytes) counted\(doc.lowerBound ? " (a lower bound: \(doc.lowerBoundReasons.joined(separator: ", ")))" : "")")
        guard let dir = initial.stateDirectory else { return }
        let path = "\(dir)/last-run.json"
        let temp = path + ".tmp"
        do {
            // 0600 whatever the umask: the counts of a relay are the operator's alone.
            unlink(temp)
            guard FileManager.default.createFile(atPath: temp, contents: doc.json(), attributes: [.posixPermissions: 0o600]) else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            guard rename(temp, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            logger.error("cannot write final counters to \(path): \(error.localizedDescription)")
        }
    }

    static func readToken(_ path: String?) throws(AgentError) -> String? {
        guard let path else { return nil }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .tokenFile(path: path, reason: "cannot be read (\(error.localizedDescription))")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw .tokenFile(path: path, reason: "is empty") }
        return token
    }
}
