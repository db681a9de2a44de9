import FlowMeterCore
// Foundation has a `Port` class of its own; in this module the name means
// FlowMeter's typed port number.
typealias Port = FlowMeterCore.Port
