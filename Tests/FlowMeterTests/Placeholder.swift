import Testing
@testable import FlowMeter

@Test func packetCounterLayoutHasOneCellPerRelayCategoryAndDirection() {
    #expect(CounterLayout(relayCount: 3).cellCount == 3 * 7 * 2)
}
