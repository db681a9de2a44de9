import FuzzSupport

@_cdecl("FuzzSpillFile_main")
public func mainFuzzSpillFile(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzSpillFile(data, size)
    }
}
