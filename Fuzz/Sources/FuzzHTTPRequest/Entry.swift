import FuzzSupport

@_cdecl("FuzzHTTPRequest_main")
public func mainFuzzHTTPRequest(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzHTTPRequest(data, size)
    }
}
