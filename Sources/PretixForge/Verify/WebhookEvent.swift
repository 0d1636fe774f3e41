import FoundationEssentials

/// A NodeRails webhook event body in the shape docs/noderails-contract.md describes, with the ids the plugin matches on.
public struct WebhookEvent: Sendable {
    public var type: String
    public var eventID: String?
    public var sessionID: String
    public var intentID: String
    public var amount: String
    public var currency: String
    public var refundID: String?

    public init(type: String, eventID: String? = nil, sessionID: String, intentID: String, amount: String, currency: String, refundID: String? = nil) {
        self.type = type
        self.eventID = eventID
        self.sessionID = sessionID
        self.intentID = intentID
        self.amount = amount
        self.currency = currency
        self.refundID = refundID
    }

    /// NodeRails' status word for an event type ("payment.captured" → "CAPTURED").
    static func status(for type: String) -> String {
        (type.split(separator: ".").last.map(String.init) ?? type).uppercased()
    }

    /// Compact JSON with a stable key order, so the same arguments sign to the same bytes.
    public func body(createdAt: Date) -> Data {
        let created = createdAt.formatted(.iso8601)
        let id = eventID ?? "evt_" + Digest.sha256(Data("\(type)|\(sessionID)|\(intentID)|\(created)".utf8)).hexString.prefix(24)
        var data: [String: String] = [
            "id": intentID, "paymentIntentId": intentID, "checkoutSessionId": sessionID,
            "status": Self.status(for: type), "amount": amount, "currency": currency,
        ]
        if let refundID { data["refundId"] = refundID }
        let event = Event(id: String(id), type: type, createdAt: created, data: data)
        // Key order is fixed by .sortedKeys; slashes stay unescaped as NodeRails sends them.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(event)) ?? Data()
    }

    private struct Event: Encodable {
        var id, type, createdAt: String
        var data: [String: String]
    }
}
