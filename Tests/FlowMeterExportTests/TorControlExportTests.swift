import Foundation
import Testing
@testable import FlowMeterExport
@testable import FlowMeterAccounting

/// Tor's own figures in /metrics and /api/v1/status, as exact text.
@Suite struct TorControlExportTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_000)

    static func status() -> TorControlStatus {
        let f = TorControlFigures(readAt: at, fingerprint: "E3614183D5214D52D9DD48CEB23C2CB6B653D287", accountingEnabled: true,
                                  hibernating: .awake, bytesRead: 1000, bytesWritten: 2000,
                                  intervalStart: Date(timeIntervalSince1970: 1_799_971_200), intervalEnd: Date(timeIntervalSince1970: 1_800_057_600))
        let p = TorLivePrediction(rate: 100, softLimit: 9500, hardLimit: 10_000,
                                  softLimitAt: at.addingTimeInterval(65), hardLimitAt: at.addingTimeInterval(70), wakeAt: nil)
        return TorControlStatus(relay: "exit1", up: true, rule: .sum, accountingMax: 10_000, figures: f, wireToTorRatio: 1.0625, prediction: p)
    }

    @Test func theFiguresAreRenderedPerRelayWithOneSamplePerHibernationState() {
        var r = AgentReading()
        r.torControl = [Self.status(), TorControlStatus(relay: "guard", up: false, rule: .max, accountingMax: 0)]
        let text = String(decoding: PrometheusRenderer().render(r), as: UTF8.self)
        for line in [
            "flowmeter_tor_control_up{relay=\"exit1\"} 1",
            "flowmeter_tor_control_up{relay=\"guard\"} 0",
            "flowmeter_tor_accounting_read_bytes{relay=\"exit1\"} 1000",
            "flowmeter_tor_accounting_written_bytes{relay=\"exit1\"} 2000",
            "flowmeter_tor_hibernating{relay=\"exit1\",state=\"awake\"} 1",
            "flowmeter_tor_hibernating{relay=\"exit1\",state=\"soft\"} 0",
            "flowmeter_tor_hibernating{relay=\"exit1\",state=\"hard\"} 0",
            "flowmeter_tor_accounting_interval_end_timestamp_seconds{relay=\"exit1\"} 1800057600.0",
            "flowmeter_tor_wire_to_tor_bytes_ratio{relay=\"exit1\"} 1.0625",
            "flowmeter_tor_predicted_soft_limit_timestamp_seconds{relay=\"exit1\"} 1800000065.0",
            "flowmeter_tor_predicted_hard_limit_timestamp_seconds{relay=\"exit1\"} 1800000070.0",
        ] {
            #expect(text.contains("\n" + line + "\n"), "\(line)")
        }
        #expect(!text.contains("flowmeter_tor_predicted_wakeup_timestamp_seconds"))
        #expect(!text.contains("read_bytes{relay=\"guard\"}"))
    }

    @Test func theStatusDocumentCarriesTheSameView() throws {
        var r = AgentReading()
        r.torControl = [Self.status()]
        let doc = StatusDocument(r)
        let v = try #require(doc.torControl?.first)
        #expect(v.relay == "exit1" && v.up && v.hibernating == "awake" && v.accountingBytes == 3000)
        #expect(v.predictedSoftLimit == "2027-01-15T08:01:05Z" && v.predictedWakeup == nil)
        #expect(StatusDocument(AgentReading()).torControl == nil)
    }
}
