import FuzzSupport

@_cdecl("FuzzStoreReader_main")
public func mainFuzzStoreReader(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzStoreReader(data, size)
    }
}
