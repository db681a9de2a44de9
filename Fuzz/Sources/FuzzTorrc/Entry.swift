import FuzzSupport

@_cdecl("FuzzTorrc_main")
public func mainFuzzTorrc(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzTorrc(data, size)
    }
}
