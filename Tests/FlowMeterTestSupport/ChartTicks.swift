import Foundation

/// Reads the value-axis labels of every chart in an SVG or HTML text and
/// says which break the rule a person reads an axis by: every label in one
/// unit, and the labels 0, s, 2s … for a step s of 1, 2 or 5 × 10^n in that
/// unit (`200 GiB`, `400 GiB`, not `232.83 GiB`, `465.66 GiB`).
enum ChartTicks {
    /// One chart's labels, in document order.
    struct Chart: Equatable {
        var id: String
        var labels: [String]
    }

    /// Every `<svg … class="chart" id="…">` and its `class="tick"` labels.
    static func charts(in text: String) -> [Chart] {
        var out: [Chart] = []
        for piece in text.components(separatedBy: "<svg").dropFirst() {
            guard let close = piece.range(of: "</svg>") else { continue }
            let body = piece[..<close.lowerBound]
            guard body.contains("class=\"chart\"") else { continue }
            let id = value(of: "id", in: String(body.prefix(400))) ?? "?"
            var labels: [String] = []
            for tick in body.components(separatedBy: "class=\"tick\"").dropFirst() {
                guard let gt = tick.firstIndex(of: ">"), let lt = tick[gt...].firstIndex(of: "<") else { continue }
                labels.append(String(tick[tick.index(after: gt)..<lt]))
            }
            out.append(Chart(id: id, labels: labels))
        }
        return out
    }

    /// What is wrong with one chart's labels; empty when it reads at a glance.
    static func problems(_ chart: Chart) -> [String] {
        guard !chart.labels.isEmpty else { return ["\(chart.id): no value-axis labels"] }
        var units = Set<String>()
        var values: [Double] = []
        for label in chart.labels {
            if label == "0" { values.append(0); continue }
            let parts = label.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let v = Double(parts[0]) else { return ["\(chart.id): unreadable label '\(label)'"] }
            units.insert(String(parts[1]))
            values.append(v)
        }
        if units.count > 1 { return ["\(chart.id): labels in several units \(units.sorted())"] }
        let distinct = Array(Set(values)).sorted()
        guard distinct.count >= 2, distinct[0] == 0 else { return ["\(chart.id): labels \(chart.labels) do not start at 0"] }
        let step = distinct[1]
        guard isOneTwoFive(step) else { return ["\(chart.id): step \(step) is not 1, 2 or 5 × 10^n (\(chart.labels))"] }
        for (i, v) in distinct.enumerated() where abs(v - Double(i) * step) > step * 1e-6 {
            return ["\(chart.id): label \(v) is not \(i) × \(step) (\(chart.labels))"]
        }
        return []
    }

    static func isOneTwoFive(_ v: Double) -> Bool {
        guard v > 0 else { return false }
        let m = v / pow(10, floor(log10(v) + 1e-9))
        return [1.0, 2, 5].contains { abs(m - $0) < 1e-6 }
    }

    private static func value(of attribute: String, in text: String) -> String? {
        guard let r = text.range(of: " \(attribute)=\"") else { return nil }
        return String(text[r.upperBound...].prefix { $0 != "\"" })
    }
}
