import Foundation

/// Several charts in one standalone SVG file (`report --svg`): each chart is
/// the dashboard's own SVG, placed one below the other.
public enum ChartDocument {
    public static func svg(title: String, charts: [String]) -> String {
        let height = 240 * max(1, charts.count) + 24
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 \(height)" width="720" height="\(height)" font-family="sans-serif">
        <title>\(SVG.escape(title))</title>
        <rect width="720" height="\(height)" fill="#fff"/>
        <text x="8" y="16" font-size="13">\(SVG.escape(title))</text>\n
        """
        for (i, chart) in charts.enumerated() {
            // A nested <svg> with its own viewBox keeps each chart's coordinates.
            out += "<g transform=\"translate(0,\(24 + 240 * i))\">\n"
            out += chart.replacingOccurrences(of: "style=\"width:100%;height:auto;font-family:sans-serif\"", with: "width=\"720\" height=\"240\"")
            out += "</g>\n"
        }
        if charts.isEmpty { out += "<text x=\"8\" y=\"60\" font-size=\"12\">no traffic stored in this range</text>\n" }
        return out + "</svg>\n"
    }
}
