import Foundation

/// How a browser presents the agent's token. A browser cannot send a bearer
/// header from its address bar, but it can answer a Basic challenge: the
/// password is the token (the user name is ignored). Scrapers keep using
/// `Authorization: Bearer`. The token never appears in a URL, so it stays
/// out of history, logs and referrers.
enum DashboardAccess {
    /// The dashboard loads nothing from anywhere, not even from its own
    /// origin beyond the document: the browser enforces it.
    static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

    /// Basic for the page (so the browser asks for the token), Bearer elsewhere.
    static func challenge(uri: String) -> String {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        return path == "/" ? "Basic realm=\"flowmeter\", charset=\"UTF-8\"" : "Bearer"
    }
}

extension HTTPEndpoint {
    /// The token in an `Authorization` header: `Bearer TOKEN`, or `Basic`
    /// with TOKEN as the password; nil for anything else.
    static func presentedToken(_ header: String) -> String? {
        if let bearer = HTTPEndpoint.bearerToken(header) { return String(bearer) }
        // Schemes are case-insensitive (RFC 7235), Basic as Bearer.
        guard let space = header.firstIndex(of: " "), header[..<space].lowercased() == "basic",
              let data = Data(base64Encoded: header[space...].trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":") else { return nil }
        return String(text[text.index(after: colon)...])
    }
}
