import FuzzSupport

@_cdecl("FuzzPcapLibpcap_main")
public func mainFuzzPcapLibpcap(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzPcapLibpcap(data, size)
    }
}
