import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

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
