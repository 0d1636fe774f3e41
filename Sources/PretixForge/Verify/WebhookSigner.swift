import FoundationEssentials

/// Signs NodeRails webhook deliveries the way NodeRails does, for the vector harness and for
/// organisers testing a deployment (`pretix-forge webhook sign|send`).
public struct WebhookSigner: Sendable {
    public static let signatureHeader = "x-noderails-signature"
    public static let timestampHeader = "x-noderails-timestamp"

    public var secret: String
    public var payload: ForgeConfig.SignaturePayload
    public var unit: ForgeConfig.TimestampUnit

    public init(secret: String, payload: ForgeConfig.SignaturePayload, unit: ForgeConfig.TimestampUnit) {
        self.secret = secret
        self.payload = payload
        self.unit = unit
    }

    /// The bytes the HMAC covers: "<timestamp>.<body>" or the body alone.
    public static func signedPayload(body: Data, timestamp: String, scheme: ForgeConfig.SignaturePayload) -> Data {
        switch scheme {
        case .timestampDotBody: return Data((timestamp + ".").utf8) + body
        case .body: return body
        }
    }

    public func signature(body: Data, timestamp: String) -> String {
        Digest.hmacSHA256(key: Data(secret.utf8), message: Self.signedPayload(body: body, timestamp: timestamp, scheme: payload)).hexString
    }

    public func timestamp(for date: Date) -> String {
        switch unit {
        case .milliseconds: return String(Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
        case .seconds: return String(Int64(date.timeIntervalSince1970.rounded(.down)))
        }
    }

    /// Headers of a correctly signed delivery of `body` at `date`.
    public func headers(body: Data, at date: Date) -> [(name: String, value: String)] {
        let timestamp = timestamp(for: date)
        return [
            ("content-type", "application/json"),
            (Self.signatureHeader, signature(body: body, timestamp: timestamp)),
            (Self.timestampHeader, timestamp),
        ]
    }
}
