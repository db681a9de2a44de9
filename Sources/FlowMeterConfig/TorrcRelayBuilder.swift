import FlowMeterCore
import Foundation

extension Torrc {
    /// Folds a torrc's entries, one at a time, into a relay instance: `apply`
    /// is one `case` per option (adding an option is adding a case), and
    /// `finish` derives what needs all of them (exit addresses, accounting).
    struct RelayBuilder {
        var relay: TorInstance
        var warnings: [String] = []
        let source: String
        private var exitRelay: Bool? = nil
        private var policyAccepts = false
        private var reducedPolicy = false
        private var outboundAny: [IPAddress] = []
        private var outboundOR: [IPAddress] = []
        private var outboundExit: [IPAddress] = []
        private var accountingMax: UInt64? = nil
        private var accountingStart: String? = nil
        private var accountingRule: String? = nil
        private var relayRate: UInt64? = nil
        private var rate: UInt64? = nil

        init(name: String, source: String) {
            relay = TorInstance(relay: HostModel.Relay(name: name))
            relay.sourceFile = source
            self.source = source
        }

        mutating func apply(_ e: TorrcEntry) throws(ConfigError) {
            switch e.key {
            case "nickname": try nickname(e)
            case "orport", "dirport": try listener(e)
            case "address": if let a = try address(e) { relay.addresses.append(a) }
            case "outboundbindaddress": if let a = try address(e) { outboundAny.append(a) }
            case "outboundbindaddressor": if let a = try address(e) { outboundOR.append(a) }
            case "outboundbindaddressexit": if let a = try address(e) { outboundExit.append(a) }
            case "exitrelay": try exitRelay(e)
            case "exitpolicy": exitPolicy(e)
            case "reducedexitpolicy": reducedPolicy = e.value == "1"
            case "accountingmax": accountingMax = try memoryUnits(e)
            case "accountingstart": accountingStart = e.value
            case "accountingrule": try accountingRule(e)
            case "relaybandwidthrate": relayRate = try memoryUnits(e)
            case "bandwidthrate": rate = try memoryUnits(e)
            case "datadirectory": relay.dataDirectory = e.value
            default: break
            }
        }

        mutating func finish() -> (TorInstance, [String]) {
            relay.isExit = exitRelay ?? (policyAccepts || reducedPolicy)
            relay.orOutboundAddresses = outboundOR.isEmpty ? outboundAny : outboundOR
            relay.addresses += outboundAny + outboundOR + outboundExit
            if relay.isExit {
                relay.exitAddresses = !outboundExit.isEmpty ? outboundExit
                    : !outboundAny.isEmpty ? outboundAny : relay.addresses
            }
            relay.addresses = Torrc.unique(relay.addresses)
            if let max = accountingMax, max > 0 {
                var acct = TorAccountingSettings(maxBytes: max, start: accountingStart, rule: accountingRule)
                acct.relayBandwidthRate = relayRate
                acct.bandwidthRate = rate
                relay.accounting = acct
            }
            if relay.orListeners.isEmpty {
                warnings.append("\(source): no listening ORPort; or_inbound traffic for \(relay.name) cannot be recognised")
            }
            return (relay, warnings)
        }

        // MARK: One option each

        private mutating func nickname(_ e: TorrcEntry) throws(ConfigError) {
            guard !e.value.isEmpty, e.value.count <= 19, e.value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                throw ConfigError(file: e.file, line: e.line, "Nickname must be 1–19 letters or digits, got '\(e.value)'")
            }
            relay.nickname = e.value
            relay.name = e.value
        }

        private mutating func listener(_ e: TorrcEntry) throws(ConfigError) {
            guard let listener = try Torrc.listenerSpec(e, warnings: &warnings) else { return }
            if e.key == "orport" { relay.orListeners.append(listener) } else { relay.dirListeners.append(listener) }
            if let a = listener.address { relay.addresses.append(a) }
        }

        private mutating func address(_ e: TorrcEntry) throws(ConfigError) -> IPAddress? {
            let token = e.value.split(separator: " ").first.map(String.init) ?? ""
            if let a = IPAddress(parsing: token) { return a }
            if token.isEmpty { throw ConfigError(file: e.file, line: e.line, "\(e.keyword) needs an address") }
            warnings.append("\(e.file):\(e.line): \(e.keyword) \(token) is not an IP address; FlowMeter never resolves names, so it is ignored")
            return nil
        }

        private mutating func exitRelay(_ e: TorrcEntry) throws(ConfigError) {
            switch e.value.lowercased() {
            case "1": exitRelay = true
            case "0": exitRelay = false
            case "auto": exitRelay = nil
            default: throw ConfigError(file: e.file, line: e.line, "ExitRelay must be 0, 1 or auto, got '\(e.value)'")
            }
        }

        private mutating func exitPolicy(_ e: TorrcEntry) {
            for item in e.value.split(separator: ",") {
                if item.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("accept") { policyAccepts = true }
            }
        }

        private mutating func accountingRule(_ e: TorrcEntry) throws(ConfigError) {
            guard ["sum", "max", "in", "out"].contains(e.value) else {
                throw ConfigError(file: e.file, line: e.line, "AccountingRule must be sum, max, in or out, got '\(e.value)'")
            }
            accountingRule = e.value
        }

        private func memoryUnits(_ e: TorrcEntry) throws(ConfigError) -> UInt64 { try Torrc.memoryUnits(e) }
    }
}
