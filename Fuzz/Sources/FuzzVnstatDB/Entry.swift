import FuzzSupport

@_cdecl("FuzzVnstatDB_main")
public func mainFuzzVnstatDB(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzVnstatDB(data, size)
    }
}
