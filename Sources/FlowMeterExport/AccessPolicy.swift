import FlowMeterCore
import FlowMeterCapture
import FlowMeterAccounting
import FlowMeterReports
/// Who may read the agent's HTTP endpoint, in the spirit of Tor's
/// MetricsPortPolicy: `accept|reject CIDR` rules, the first rule that matches
/// the client's address decides, and an address no rule matches is refused.
/// The default admits loopback only, because counts of a relay's traffic are
/// sensitive (docs/tor-facts.md §5.3): anything wider is an operator's choice.
public struct AccessPolicy: Sendable, Equatable, CustomStringConvertible {
    public struct Rule: Sendable, Equatable, CustomStringConvertible {
        public var accept: Bool
        /// Network address (masked) and prefix length in the 128-bit
        /// v4-mapped space: an IPv4 /24 is a /120 here.
        public var network: IPAddress
        public var prefixLength: Int
        /// The text it was parsed from, for status and logs.
        public var text: String

        public init(accept: Bool, network: IPAddress, prefixLength: Int, text: String) {
            self.accept = accept
            self.prefixLength = prefixLength
            self.network = network.masked(prefixLength)
            self.text = text
        }

        /// `accept 127.0.0.0/8`, `reject 198.51.100.7`, `accept [::1]/128`,
        /// `reject *` (every address), `accept *4` / `*6` (every IPv4 / IPv6).
        public init?(parsing line: String) {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count == 2 else { return nil }
            switch words[0].lowercased() {
            case "accept": accept = true
            case "reject": accept = false
            default: return nil
            }
            text = "\(words[0].lowercased()) \(words[1])"
            let target = String(words[1])
            switch target {
            case "*": network = .zero; prefixLength = 0; return
            case "*4": network = IPAddress(ipv4: 0); prefixLength = 96; return
            case "*6":
                // Every IPv6 address: expressed as "not v4-mapped" below.
                network = IPAddress(hi: 0, lo: 0); prefixLength = -6; return
            default: break
            }
            var addressText = Substring(target)
            var length: Int? = nil
            if let slash = target.lastIndex(of: "/") {
                guard let n = Int(target[target.index(after: slash)...]) else { return nil }
                length = n
                addressText = target[..<slash]
            }
            if addressText.hasPrefix("[") && addressText.hasSuffix("]") {
                addressText = addressText.dropFirst().dropLast()
            }
            guard let address = IPAddress(parsing: String(addressText)) else { return nil }
            let maxLength = address.isIPv4 ? 32 : 128
            let n = length ?? maxLength
            guard (0...maxLength).contains(n) else { return nil }
            prefixLength = address.isIPv4 ? 96 + n : n
            network = address.masked(prefixLength)
        }

        public func matches(_ a: IPAddress) -> Bool {
            if prefixLength == -6 { return !a.isIPv4 }
            return a.masked(prefixLength) == network
        }

        public var description: String { text }
    }

    public var rules: [Rule]
    public init(rules: [Rule]) { self.rules = rules }

    public static let loopbackOnly = AccessPolicy(rules: [
        Rule(parsing: "accept 127.0.0.0/8")!,
        Rule(parsing: "accept [::1]/128")!,
        Rule(parsing: "reject *")!,
    ])

    /// First match wins; no match is a refusal.
    public func admits(_ client: IPAddress) -> Bool {
        for rule in rules where rule.matches(client) { return rule.accept }
        return false
    }

    public var description: String { rules.map(\.text).joined(separator: ", ") }
}

extension IPAddress {
    /// The first `prefixLength` bits of the 128-bit form, the rest zero.
    func masked(_ prefixLength: Int) -> IPAddress {
        let n = max(0, min(128, prefixLength))
        let hiMask: UInt64 = n >= 64 ? .max : (n == 0 ? 0 : ~(UInt64.max >> UInt64(n)))
        let loMask: UInt64 = n <= 64 ? 0 : (n == 128 ? .max : ~(UInt64.max >> UInt64(n - 64)))
        return IPAddress(hi: hi & hiMask, lo: lo & loMask)
    }
}
