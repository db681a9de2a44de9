import FlowMeterCore
import FuzzSupport

/// A capture file of arbitrary bytes read by libpcap alone (pcap and
/// pcapng, both byte orders), then decoded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcapLibpcap(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzCapture.read(data, size, reader: .libpcap)
}
