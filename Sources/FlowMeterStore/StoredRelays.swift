import GRDB

extension AccountingReader {
    /// Every relay label the store has counts for, sorted.
    public func relayLabels() throws -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT DISTINCT relay FROM bucket ORDER BY relay") }
    }
}
