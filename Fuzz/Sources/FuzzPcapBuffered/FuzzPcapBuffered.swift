import FlowMeterCore
import FuzzSupport

/// A capture file of arbitrary bytes through the buffered classic-pcap
/// reader (libpcap opens it; records are read by FlowMeter's own code).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcapBuffered(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzCapture.read(data, size, reader: .automatic)
}
