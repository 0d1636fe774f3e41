import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The stock customer-facing texts and colours, used where a config leaves them out.
enum BrandingDefaults {
    static let accentColor = "#2f6fed"
    static let textColor = "#ffffff"

    static let texts: [String: [String: String]] = [
        "payment_description": [
            "en": "Pay with cryptocurrency through NodeRails. The secure NodeRails checkout opens on the next page; your order is placed once the payment has arrived.",
            "de": "Bezahlen Sie mit Kryptowährung über NodeRails. Der sichere NodeRails-Checkout öffnet sich auf der nächsten Seite; Ihre Bestellung wird abgeschlossen, sobald die Zahlung eingegangen ist.",
            "de-informal": "Bezahle mit Kryptowährung über NodeRails. Der sichere NodeRails-Checkout öffnet sich auf der nächsten Seite; deine Bestellung wird abgeschlossen, sobald die Zahlung eingegangen ist.",
        ],
        "confirm_heading": [
            "en": "Complete your crypto payment",
            "de": "Schließen Sie Ihre Krypto-Zahlung ab",
            "de-informal": "Schließe deine Krypto-Zahlung ab",
        ],
        "confirm_instructions": [
            "en": "Pay in the NodeRails checkout below. As soon as your payment is detected, you can place your order.",
            "de": "Bezahlen Sie im NodeRails-Checkout unten. Sobald Ihre Zahlung erkannt wurde, können Sie Ihre Bestellung abschließen.",
            "de-informal": "Bezahle im NodeRails-Checkout unten. Sobald deine Zahlung erkannt wurde, kannst du deine Bestellung abschließen.",
        ],
        "waiting_message": [
            "en": "Waiting for your payment…",
            "de": "Warten auf Ihre Zahlung …",
            "de-informal": "Warten auf deine Zahlung …",
        ],
        "success_message": [
            "en": "Payment received. You can now place your order.",
            "de": "Zahlung erhalten. Sie können Ihre Bestellung jetzt abschließen.",
            "de-informal": "Zahlung erhalten. Du kannst deine Bestellung jetzt abschließen.",
        ],
        "failure_message": [
            "en": "The payment did not go through and you have not been charged. Please try again or choose another payment method.",
            "de": "Die Zahlung ist nicht durchgegangen, es wurde nichts abgebucht. Bitte versuchen Sie es erneut oder wählen Sie eine andere Zahlungsart.",
            "de-informal": "Die Zahlung ist nicht durchgegangen, es wurde nichts abgebucht. Bitte versuche es erneut oder wähle eine andere Zahlungsart.",
        ],
        "pending_email_text": [
            "en": "If you have completed your crypto payment, it is being confirmed now; you will receive another e-mail as soon as it has been confirmed. If it did not go through, you can pay again on your order page: {order_url}",
            "de": "Wenn Sie Ihre Krypto-Zahlung abgeschlossen haben, wird sie gerade bestätigt; Sie erhalten eine weitere E-Mail, sobald sie bestätigt ist. Falls sie nicht durchgegangen ist, können Sie auf Ihrer Bestellseite erneut bezahlen: {order_url}",
            "de-informal": "Wenn du deine Krypto-Zahlung abgeschlossen hast, wird sie gerade bestätigt; du erhältst eine weitere E-Mail, sobald sie bestätigt ist. Falls sie nicht durchgegangen ist, kannst du auf deiner Bestellseite erneut bezahlen: {order_url}",
        ],
        "invoice_text": [
            "en": "Paid with {method} on {network}. Transaction hash: {tx_hash}",
            "de": "Bezahlt mit {method} im Netzwerk {network}. Transaktions-Hash: {tx_hash}",
            "de-informal": "Bezahlt mit {method} im Netzwerk {network}. Transaktions-Hash: {tx_hash}",
        ],
    ]
}

/// Checks that a logo is what its extension says, and that an SVG cannot run code when
/// pretix serves it from its own origin.
enum LogoCheck {
    static func pngProblem(_ data: Data) -> String? {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard data.count > 24, Array(data.prefix(8)) == signature, String(decoding: data[12..<16], as: UTF8.self) == "IHDR" else {
            return "the file is not a PNG image"
        }
        return nil
    }

    static func svgProblem(_ data: Data) -> String? {
        let delegate = SVGInspector()
        let parser = XMLParser(data: data)
        parser.shouldResolveExternalEntities = false
        parser.delegate = delegate
        // Linux's XMLParser reports success for a truncated document; also require the root to close.
        guard parser.parse(), parser.parserError == nil, delegate.rootClosed else {
            return "the file is not well-formed SVG (XML error at line \(parser.lineNumber))"
        }
        return delegate.problem ?? (delegate.root == "svg" ? nil : "the root element is <\(delegate.root ?? "none")>, not <svg>")
    }

    private final class SVGInspector: NSObject, XMLParserDelegate {
        var root: String?
        var problem: String?
        var rootClosed = false
        private var depth = 0

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            depth -= 1
            if depth == 0 { rootClosed = true }
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            let local = name.split(separator: ":").last.map(String.init)?.lowercased() ?? name
            depth += 1
            if root == nil { root = local }
            guard problem == nil else { return }
            if local == "script" || local == "foreignobject" {
                problem = "the SVG contains <\(name)>, which could run code"
                return
            }
            for (attribute, value) in attributes {
                let lowered = attribute.lowercased()
                if lowered.hasPrefix("on") {
                    problem = "the SVG has an event handler (\(attribute)=…)"
                } else if lowered == "href" || lowered.hasSuffix(":href") {
                    let target = value.trimmingCharacters(in: .whitespaces).lowercased()
                    if !(target.hasPrefix("#") || target.hasPrefix("data:image/png") || target.hasPrefix("data:image/jpeg")) {
                        problem = "the SVG references '\(value)'; only internal (#id) and embedded image references are allowed"
                    }
                }
            }
        }
    }
}
