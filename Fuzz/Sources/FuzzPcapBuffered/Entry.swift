// SwiftPM links an executable's entry point as `FuzzPcapBuffered_main` (so tests can
// link it too), which shadows libFuzzer's own main: start libFuzzer's driver
// from there instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzPcapBuffered_main")
public func fuzzPcapBufferedMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc, argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzPcapBuffered(data, size)
    }
}
