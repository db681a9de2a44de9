/// Build identification, exported as `flowmeter_build_info`.
public enum FlowMeterVersion {
    public static let string = "0.1.0"
}
