import Foundation
import Testing
@testable import FlowMeterFleet

/// The central store's answer as `flowmeter fleet` reads it: series from a
/// sound answer, and from anything else an error that quotes the store in
/// printable text of bounded length (it is printed on the operator's terminal).
struct QueryAnswerTests {
    static func isPrintable(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy {
            ![.control, .format, .lineSeparator, .paragraphSeparator, .surrogate].contains($0.properties.generalCategory)
        }
    }

    @Test func aVectorAnswerDecodesToItsSeriesAndARefusalQuotesTheStoreVerbatim() throws {
        let vector = #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"host":"a"},"value":[1772330400.5,"15000"]}]}}"#
        #expect(try QueryAnswer.decode(Array(vector.utf8), status: 200, expr: "up")
                    == [PromSeries(labels: ["host": "a"], samples: [PromSample(1_772_330_400.5, 15_000)])])
        let refusal = #"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}"#
        #expect(throws: QueryError(#"the store refused `up`: bad_data: invalid parameter "query": 1:5: parse error"#)) {
            try QueryAnswer.decode(Array(refusal.utf8), status: 400, expr: "up")
        }
    }

    /// The fuzzer's finding (prom-query): a 422 whose body is a newline.
    @Test func aBodyThatIsNotAnAnswerIsQuotedWithoutItsControlCharacters() throws {
        let error = try #require(throws: QueryError.self) { try QueryAnswer.decode([0x0A], status: 422, expr: "up") }
        #expect(error.description.hasPrefix("HTTP 422, not a query API answer"))
        #expect(Self.isPrintable(error.description), "\(error.description.debugDescription)")
    }

    @Test func aStoresErrorWithTerminalEscapesAndNoEndIsQuotedPrintableAndShort() throws {
        let body = #"{"status":"error","errorType":"bad_data\u001b[2J","error":"\u001b]52;c;cm0gLXJm\u0007"#
            + String(repeating: "x", count: 2_000) + #""}"#
        let error = try #require(throws: QueryError.self) { try QueryAnswer.decode(Array(body.utf8), status: 400, expr: "up") }
        #expect(error.description.hasPrefix("the store refused `up`: bad_data[2J: ]52;c;cm0gLXJmxxx"))
        #expect(Self.isPrintable(error.description), "\(error.description.debugDescription)")
        #expect(error.description.count <= 400)
    }
}
