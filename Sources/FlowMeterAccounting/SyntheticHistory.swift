import FlowMeterCore
import Foundation

/// Deterministic synthetic histories for backtests: hourly rows with a
/// diurnal cycle and log-normal noise, plus one feature per shape. Each shape
/// is a kind of relay host an operator runs; the forecast must beat vnstat's
/// formula on every one (docs/quotas.md, "Backtest").
public enum SyntheticHistory {
    public enum Shape: String, CaseIterable, Sendable {
        /// Constant mean (diurnal cycle and noise only): a steady relay.
        case flat
        /// Weekdays busy, weekends at about half.
        case weekly
        /// Traffic growing 60 % a month.
        case trend
        /// The relay down three days mid-month (zero traffic), and capture
        /// stopped two days mid-month another month (a gap, no rows).
        case outage
        /// Single days at 8× the usual traffic, one mid-month, one early.
        case spike
        /// The operator changes RelayBandwidthRate: doubled on 10 February,
        /// cut to 60 % on 20 April, raised by half on 5 June.
        case step
        /// A new relay earning its consensus weight over weeks, then settling;
        /// restarted on 10 April, it drops to half and climbs back in days.
        case ramp
        /// Floods of one to three days at 3–5× the usual traffic, a few a month.
        case flood
        /// Daily accounting: the relay wakes at a random early hour, runs at
        /// twice the rate until its daily allowance is spent, then hibernates.
        case hibernation
        /// Traffic slowly fading (−15 % a month), as a relay loses weight.
        case decline
        /// Office hours: weekdays 08–18 at three times the night and weekend rate.
        case office
    }

    /// `days` of hourly rows from `start`, ~20 MB/s per direction on average.
    public static func generate(_ shape: Shape, start: Date, days: Int, seed: UInt64 = 1) -> HistoryFile {
        var rng = SplitMix64(seed: seed &+ UInt64(Shape.allCases.firstIndex(of: shape)!))
        var rows: [HistoryFile.Row] = []
        let base = 20_000_000.0
        let floods = shape == .flood ? floodDays(days: days, rng: &rng) : [:]
        for d in 0..<days {
            let dayNoise = exp(0.05 * rng.gaussian())
            let wd = LocalTime(start.addingTimeInterval(Double(d) * 86_400), in: TimeZone(identifier: "UTC")!).weekday
            var dayFactor = 1.0
            switch shape {
            case .flat, .hibernation, .office: break
            case .weekly: dayFactor = wd == 0 ? 0.45 : wd == 6 ? 0.55 : 1.2
            case .trend: dayFactor = 1 + 0.6 * Double(d) / 30
            case .outage:
                if (45...47).contains(d) { dayFactor = 0 }          // relay down mid-February
                if (73...74).contains(d) { continue }               // capture stopped mid-March
            case .spike:
                if d == 44 || d == 61 { dayFactor = 8 }             // 14 Feb, 3 Mar
            case .step: dayFactor = stepFactor(day: d)
            case .ramp: dayFactor = rampFactor(day: Double(d))
            case .flood: dayFactor = floods[d] ?? 1
            case .decline: dayFactor = exp(-0.15 * Double(d) / 30) * 1.5
            }
            let wake = shape == .hibernation ? Int(rng.uniform() * 6) : 0   // hibernation: wake-up hour
            var allowance = 24 * base * dayNoise                    // hibernation: bytes/s·h left today
            for h in 0..<24 {
                var r: Double
                switch shape {
                case .hibernation:
                    r = h < wake || allowance <= 0 ? 0 : min(2 * base, allowance)
                    allowance -= r
                case .office:
                    let open = wd != 0 && wd != 6 && (8..<18).contains(h)
                    r = base * dayNoise * (open ? 2.2 : 0.73)
                case .ramp:
                    // The restart itself: down from 10:00 to 16:00 on 10 April.
                    r = d == 99 && (10..<16).contains(h) ? 0 : base * rampFactor(day: Double(d) + Double(h) / 24) * dayNoise * diurnal(h)
                default:
                    r = base * dayFactor * dayNoise * diurnal(h)
                }
                let i = r * exp(0.15 * rng.gaussian()) * 3600
                let o = r * 1.05 * exp(0.15 * rng.gaussian()) * 3600
                rows.append(.init(start: start.addingTimeInterval(Double(d * 86_400 + h * 3600)), seconds: 3600,
                                  bytesIn: UInt64(i), bytesOut: UInt64(o)))
            }
        }
        return HistoryFile(rows: rows)
    }

    static func diurnal(_ h: Int) -> Double { 1 + 0.35 * sin(2 * Double.pi * Double(h - 9) / 24) }

    static func stepFactor(day d: Int) -> Double {
        d < 40 ? 1 : d < 109 ? 2 : d < 155 ? 1.2 : 1.8
    }

    /// Unmeasured for three days, then most of the weight within six weeks;
    /// after the restart on day 99, back from half in about a week.
    static func rampFactor(day t: Double) -> Double {
        let grown = t < 3 ? 0.05 : 0.05 + 1.95 * (1 - exp(-(t - 3) / 14))
        guard t >= 99.7 else { return grown }
        return grown * (1 - 0.5 * exp(-(t - 99.7) / 3))
    }

    /// Flood days (day → factor): a few one-to-three-day floods a month.
    static func floodDays(days: Int, rng: inout SplitMix64) -> [Int: Double] {
        var out: [Int: Double] = [:]
        var d = 5 + Int(rng.uniform() * 6)
        while d < days {
            let length = 1 + Int(rng.uniform() * 3), factor = 3 + 2 * rng.uniform()
            for k in d..<min(days, d + length) { out[k] = factor }
            d += length + 6 + Int(rng.uniform() * 8)
        }
        return out
    }
}

/// Small deterministic PRNG (Steele, Lea, Flood 2014) so generated histories
/// are the same on every machine.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func gaussian() -> Double {
        let u1 = max(uniform(), 1e-12), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
