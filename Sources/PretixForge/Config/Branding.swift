import CExpat
import FoundationEssentials

/// Checks that a logo is what its extension says, and that an SVG cannot run code when
/// pretix serves it from its own origin.
enum LogoCheck {
    static func pngProblem(_ data: Data) -> String? {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard data.count > 24, Array(data.prefix(8)) == signature, String(decoding: data[12..<16], as: UTF8.self) == "IHDR" else {
            return "the file is not a PNG image"
        }
        // Every PNG ends with the same empty IEND chunk: without it the file was cut short.
        let end: [UInt8] = [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
        guard Array(data.suffix(end.count)) == end else { return "the PNG image is cut short (it does not end with IEND)" }
        let width = data[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = data[20..<24].reduce(0) { $0 << 8 | Int($1) }
        guard (1...maximumSide).contains(width), (1...maximumSide).contains(height) else {
            return "the PNG image claims \(width)×\(height) pixels; a logo needs 1 to \(maximumSide) on each side"
        }
        return nil
    }

    /// Parsed with expat rather than Foundation's XMLParser: that one is libxml2, which brings ICU's
    /// data into the static binary a second time. expat loads no external entity or DTD unless given
    /// a handler for them (none is set) and bounds entity expansion itself.
    /// Wider or taller than this is no logo, and a browser would be asked to allocate it.
    static let maximumSide = 8192

    static func svgProblem(_ data: Data) -> String? {
        guard let parser = XML_ParserCreate(nil) else { return "cannot start the XML parser (out of memory)" }
        defer { XML_ParserFree(parser) }
        let inspector = SVGInspector()
        let context = Unmanaged.passUnretained(inspector).toOpaque()
        XML_SetUserData(parser, context)
        XML_SetElementHandler(parser, { context, name, attributes in
            guard let context, let name else { return }
            var pairs: [(String, String)] = []
            var index = 0
            while let attributes, let key = attributes[index], let value = attributes[index + 1] {
                pairs.append((String(cString: key), String(cString: value)))
                index += 2
            }
            Unmanaged<SVGInspector>.fromOpaque(context).takeUnretainedValue().start(String(cString: name), attributes: pairs)
        }, { context, _ in
            guard let context else { return }
            Unmanaged<SVGInspector>.fromOpaque(context).takeUnretainedValue().inStyle = false
        })
        XML_SetCharacterDataHandler(parser) { context, text, length in
            guard let context, let text, length > 0 else { return }
            let inspector = Unmanaged<SVGInspector>.fromOpaque(context).takeUnretainedValue()
            guard inspector.inStyle else { return }
            inspector.stylesheet(String(decoding: UnsafeRawBufferPointer(start: text, count: Int(length)), as: UTF8.self))
        }
        // Whole document, final: a truncated one is an error, not a success.
        let status = withExtendedLifetime(inspector) {
            data.withUnsafeBytes { bytes in
                XML_Parse(parser, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count), 1)
            }
        }
        guard status == XML_STATUS_OK else {
            return "the file is not well-formed SVG (XML error at line \(XML_GetCurrentLineNumber(parser)))"
        }
        return inspector.problem ?? (inspector.root == "svg" ? nil : "the root element is <\(inspector.root ?? "none")>, not <svg>")
    }

    private final class SVGInspector {
        var root: String?
        var problem: String?
        /// Inside a <style> element, whose text is CSS (which has no child elements in SVG).
        var inStyle = false

        func start(_ name: String, attributes: [(String, String)]) {
            let local = name.split(separator: ":").last.map(String.init)?.lowercased() ?? name
            if root == nil { root = local }
            guard problem == nil else { return }
            if local == "script" || local == "foreignobject" {
                problem = "the SVG contains <\(name)>, which could run code"
                return
            }
            inStyle = local == "style"
            for (attribute, value) in attributes {
                let lowered = attribute.lowercased()
                if lowered.hasPrefix("on") {
                    problem = "the SVG has an event handler (\(attribute)=…)"
                } else if lowered == "href" || lowered.hasSuffix(":href") {
                    let target = value.trimming(.whitespaces).lowercased()
                    if !(target.hasPrefix("#") || target.hasPrefix("data:image/png") || target.hasPrefix("data:image/jpeg")) {
                        problem = "the SVG references '\(value)'; only internal (#id) and embedded image references are allowed"
                    }
                } else if lowered == "style" {
                    stylesheet(value)
                }
            }
        }

        /// CSS, in a style attribute or a <style> element, loads other files through @import and url().
        func stylesheet(_ css: String) {
            guard problem == nil else { return }
            let lowered = css.lowercased()
            if lowered.contains("@import") {
                problem = "the SVG's CSS imports another stylesheet (@import)"
                return
            }
            for part in lowered.components(separatedBy: "url(").dropFirst() {
                let target = part.drop { $0 == " " || $0 == "\"" || $0 == "'" }
                if !(target.hasPrefix("#") || target.hasPrefix("data:image/png") || target.hasPrefix("data:image/jpeg")) {
                    problem = "the SVG's CSS loads url(\(target.prefix(60))…); only internal (#id) and embedded image references are allowed"
                    return
                }
            }
        }
    }
}
