import FuzzSupport

@_cdecl("FuzzPcapBuffered_main")
public func mainFuzzPcapBuffered(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzPcapBuffered(data, size)
    }
}
