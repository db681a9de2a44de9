/// How the accounting store is doing, as the agent saw it at the last tick.
/// A store that fails after start (disk full, read-only remount) costs no
/// counts at first: they wait in memory and every flush retries, so these
/// are what an alert watches (deploy/prometheus alert rules).
public struct StoreHealth: Sendable, Equatable {
    /// The last flush (or open) succeeded.
    public var up: Bool
    /// When a flush last succeeded, seconds since the Unix epoch; nil before the first.
    public var lastFlushSeconds: Double?
    /// Flushes (and reopen attempts) that failed since the agent started.
    public var writeFailures: UInt64
    public init(up: Bool, lastFlushSeconds: Double?, writeFailures: UInt64) {
        self.up = up; self.lastFlushSeconds = lastFlushSeconds; self.writeFailures = writeFailures
    }
}

/// The store's three series in the text exposition format.
public enum StoreHealthMetrics {
    public static func text(_ h: StoreHealth) -> String {
        var out = ""
        out += "# HELP flowmeter_store_up Whether the accounting store's last write succeeded (1) or counts are waiting in memory (0).\n"
        out += "# TYPE flowmeter_store_up gauge\nflowmeter_store_up \(h.up ? 1 : 0)\n"
        if let t = h.lastFlushSeconds {
            out += "# HELP flowmeter_store_last_flush_timestamp_seconds When counts were last written to the accounting store, in seconds since the Unix epoch.\n"
            out += "# TYPE flowmeter_store_last_flush_timestamp_seconds gauge\nflowmeter_store_last_flush_timestamp_seconds \(t)\n"
        }
        out += "# HELP flowmeter_store_write_failures_total Writes to the accounting store that failed (each is retried).\n"
        out += "# TYPE flowmeter_store_write_failures_total counter\nflowmeter_store_write_failures_total \(h.writeFailures)\n"
        return out
    }
}
