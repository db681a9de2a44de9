// Every test target sees every library's public API through this module;
// a test file adds `@testable import` only for the module whose internals it tests.
@_exported import FlowMeterCore
@_exported import FlowMeterCapture
@_exported import FlowMeterConfig
@_exported import FlowMeterAccounting
@_exported import FlowMeterStore
@_exported import FlowMeterReports
@_exported import FlowMeterExport
@_exported import FlowMeterAgent
@_exported import FlowMeterFormat
@_exported import FlowMeterTorControl
@_exported import FlowMeterCoreTestSupport
