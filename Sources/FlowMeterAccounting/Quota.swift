import FlowMeterCore
import FlowMeterConfig
import FlowMeterFormat
import Foundation

/// Which bytes are compared against a limit (Tor's `AccountingRule`,
/// `get_accounting_bytes()`): read + written, the larger of the two, or one
/// direction only. Tor's default is `max`.
public enum AccountingRule: String, Sendable, Hashable, CaseIterable {
    case sum, max, `in`, out

    /// Tor accepts exactly these lower-case words (`options_validate_relay_accounting()`).
    public init(parsing text: String) throws {
        guard let r = AccountingRule(rawValue: text) else {
            throw QuotaSpecError("AccountingRule must be 'sum', 'max', 'in', or 'out', not '\(text)'")
        }
        self = r
    }

    /// The bytes this rule counts, given bytes read (in) and written (out).
    public func bytes(read: UInt64, written: UInt64) -> UInt64 {
        switch self {
        case .sum: return read &+ written
        case .max: return Swift.max(read, written)
        case .in: return read
        case .out: return written
        }
    }

    /// The same for real-valued projections.
    public func bytes(read: Double, written: Double) -> Double {
        switch self {
        case .sum: return read + written
        case .max: return Swift.max(read, written)
        case .in: return read
        case .out: return written
        }
    }
}

/// Which of the store's buckets a quota counts, and which of their byte fields.
///
/// Spellings (docs/quotas.md, "Scopes"):
/// - `provider`: every relay label (incl. `host`), every category, wire bytes —
///   what a hosting provider bills (headers, DNS, everything).
/// - `tor:RELAY`: relay RELAY's relay categories (or_inbound, or_outbound, dir,
///   exit), Tor-equivalent payload (no IP/TCP headers, no internal peers) — what
///   Tor's own accounting compares with AccountingMax.
/// - `wire:CATS[@RELAY]`, `payload:CATS[@RELAY]`: CATS is `all`, `relay` or a
///   comma list of category labels; RELAY a relay label (all when absent).
public struct QuotaScope: Sendable, Hashable, CustomStringConvertible {
    public enum Layer: String, Sendable, Hashable {
        /// pcap `len`: L2 wire bytes.
        case wire
        /// Transport payload.
        case payload
        /// Transport payload with non-internal peers (Tor's view).
        case tor
    }
    public var layer: Layer
    /// Category labels counted; nil = all.
    public var categories: Set<String>?
    /// Relay label counted; nil = all.
    public var relay: String?

    public init(layer: Layer, categories: Set<String>?, relay: String?) {
        self.layer = layer; self.categories = categories; self.relay = relay
    }

    public static let provider = QuotaScope(layer: .wire, categories: nil, relay: nil)
    static let relayCategoryLabels = Set(Category.allCases.filter(\.isRelayTraffic).map(\.label))

    /// Tor's own view of one relay instance.
    public static func tor(relay: String) -> QuotaScope {
        QuotaScope(layer: .tor, categories: relayCategoryLabels, relay: relay)
    }

    public init(parsing text: String) throws {
        if text == "provider" { self = .provider; return }
        guard let colon = text.firstIndex(of: ":") else {
            throw QuotaSpecError("Unknown scope '\(text)': use provider, tor:RELAY, wire:CATEGORIES[@RELAY] or payload:CATEGORIES[@RELAY]")
        }
        let kind = text[..<colon]
        let rest = String(text[text.index(after: colon)...])
        switch kind {
        case "tor":
            guard !rest.isEmpty, !rest.contains("@"), !rest.contains(",") else {
                throw QuotaSpecError("Scope 'tor:RELAY' names one relay label, e.g. tor:relay1")
            }
            self = .tor(relay: rest)
        case "wire", "payload":
            let parts = rest.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let cats = parts[0]
            let relay = parts.count > 1 ? parts[1] : nil
            if relay == "" { throw QuotaSpecError("Scope '\(text)': nothing after '@'") }
            let set: Set<String>?
            switch cats {
            case "all": set = nil
            case "relay": set = QuotaScope.relayCategoryLabels
            default:
                let labels = cats.split(separator: ",").map(String.init)
                guard !labels.isEmpty else { throw QuotaSpecError("Scope '\(text)' names no category") }
                for l in labels where Category(label: l) == nil {
                    throw QuotaSpecError("Unknown category '\(l)' in scope '\(text)'; known: \(Category.allCases.map(\.label).joined(separator: ", "))")
                }
                set = Set(labels)
            }
            self.init(layer: kind == "wire" ? .wire : .payload, categories: set, relay: relay)
        default:
            throw QuotaSpecError("Unknown scope kind '\(kind)' in '\(text)': use provider, tor:RELAY, wire:… or payload:…")
        }
    }

    public var description: String {
        if self == .provider { return "provider" }
        if layer == .tor, categories == QuotaScope.relayCategoryLabels, let r = relay { return "tor:\(r)" }
        let cats: String
        if let c = categories { cats = c == QuotaScope.relayCategoryLabels ? "relay" : c.sorted().joined(separator: ",") } else { cats = "all" }
        return "\(layer == .wire ? "wire" : layer == .payload ? "payload" : "tor-layer"):\(cats)" + (relay.map { "@\($0)" } ?? "")
    }

    /// Whether a bucket is counted.
    public func includes(_ b: UsageBucket) -> Bool {
        if let r = relay, b.relay != r { return false }
        if let c = categories, !c.contains(b.category.label) { return false }
        return true
    }

    /// The bucket's bytes in this scope's layer.
    public func bytes(of b: UsageBucket) -> UInt64 {
        switch layer {
        case .wire: return b.bytes
        case .payload: return b.payloadBytes
        case .tor: return b.torPayloadBytes
        }
    }
}

/// A named limit on traffic over a recurring period.
public struct Quota: Sendable, Hashable {
    public var name: String
    public var limit: UInt64
    public var period: AccountingPeriod
    public var rule: AccountingRule
    public var timeZone: TimeZone
    public var scope: QuotaScope
    /// Set when this quota mirrors a Tor instance's AccountingMax (then Tor's
    /// hibernation schedule applies to it).
    public var torRelay: String?
    /// The units its views use: SI when its limit was written in SI
    /// (`10TB-SI`), binary otherwise (docs/quotas.md, "Units").
    public var units: ByteUnits

    public init(name: String, limit: UInt64, period: AccountingPeriod, rule: AccountingRule,
                timeZone: TimeZone, scope: QuotaScope, torRelay: String? = nil, units: ByteUnits = .binary) {
        self.name = name; self.limit = limit; self.period = period; self.rule = rule
        self.timeZone = timeZone; self.scope = scope; self.torRelay = torRelay; self.units = units
    }

    /// The interval of this quota's period containing `now`.
    public func interval(containing now: Date) -> DateInterval {
        period.interval(containing: now, in: timeZone)
    }

    /// Parses `NAME LIMIT PERIOD RULE [SCOPE] [tz=ZONE]` (docs/quotas.md):
    /// tokens are blank-separated; LIMIT may be one token (`10TiB`) or two
    /// (`10 TiB`); PERIOD is consumed by its keyword's arity (`day HH:MM`,
    /// `week D HH:MM`, `month D HH:MM`); SCOPE defaults to `provider`; the
    /// zone defaults to `defaultZone` (the host's local zone, as Tor uses).
    public init(spec: String, defaultZone: TimeZone) throws {
        var tokens = spec.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)[...]
        let usage = "expected 'NAME LIMIT PERIOD RULE [SCOPE] [tz=ZONE]', e.g. 'provider 10TB-SI month 1 00:00 sum provider'"
        guard let name = tokens.popFirst() else { throw QuotaSpecError("Empty quota; \(usage)") }
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }) else {
            throw QuotaSpecError("Quota name '\(name)' may use only letters, digits, '_', '-' and '.'")
        }
        guard var limitText = tokens.popFirst() else { throw QuotaSpecError("Quota '\(name)' has no limit; \(usage)") }
        if let next = tokens.first, AccountingPeriod.tokenCount(keyword: next) == nil,
           limitText.allSatisfy({ $0.isNumber || $0 == "." }) {
            limitText += " " + tokens.removeFirst()
        }
        let limit: ByteQuantity
        do { limit = try ByteQuantity.parseLimit(limitText) } catch let e as ByteQuantityError {
            throw QuotaSpecError("Quota '\(name)': \(e.description)")
        }
        guard let keyword = tokens.first, let n = AccountingPeriod.tokenCount(keyword: keyword) else {
            throw QuotaSpecError("Quota '\(name)': the period must start with day, week or month, not '\(tokens.first ?? "")'; \(usage)")
        }
        let periodTokens = Array(tokens.prefix(n))
        tokens = tokens.dropFirst(n)
        let period: AccountingPeriod
        do { period = try AccountingPeriod(tokens: periodTokens) } catch let e as AccountingPeriodError {
            throw QuotaSpecError("Quota '\(name)': \(e.description)")
        }
        guard let ruleText = tokens.popFirst() else { throw QuotaSpecError("Quota '\(name)' has no rule (sum, max, in or out); \(usage)") }
        let rule = try AccountingRule(parsing: ruleText)
        var scope = QuotaScope.provider
        var zone = defaultZone
        var sawScope = false
        while let t = tokens.popFirst() {
            if t.hasPrefix("tz=") {
                guard let z = TimeZone(identifier: String(t.dropFirst(3))) else {
                    throw QuotaSpecError("Quota '\(name)': unknown time zone '\(t.dropFirst(3))'")
                }
                zone = z
            } else if !sawScope {
                scope = try QuotaScope(parsing: t); sawScope = true
            } else {
                throw QuotaSpecError("Quota '\(name)': unexpected '\(t)' after the scope; \(usage)")
            }
        }
        self.init(name: name, limit: limit.bytes, period: period, rule: rule, timeZone: zone, scope: scope,
                  torRelay: scope.layer == .tor ? scope.relay : nil, units: ByteQuantity.isSI(limitText) ? .si : .binary)
    }

    /// The Tor quota implied by a relay's torrc (AccountingMax/Start/Rule), or
    /// nil when accounting is off (AccountingMax 0). Edges are in `zone`, which
    /// should be the zone tor runs in (Tor uses local time).
    public static func fromTorrc(relay: String, settings: TorAccountingSettings, zone: TimeZone) throws -> Quota? {
        guard settings.maxBytes > 0 else { return nil }
        let period = try settings.start.map { try AccountingPeriod(parsing: $0) } ?? .torDefault
        let rule = try settings.rule.map { try AccountingRule(parsing: $0) } ?? .max
        return Quota(name: "tor-\(relay)", limit: settings.maxBytes, period: period, rule: rule,
                     timeZone: zone, scope: .tor(relay: relay), torRelay: relay)
    }
}

/// A quota declaration that cannot be used; the text says what to write.
public struct QuotaSpecError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
