import FuzzSupport

@_cdecl("FuzzDecoder_main")
public func mainFuzzDecoder(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzDecoder(data, size)
    }
}
