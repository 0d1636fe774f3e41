/// Escapers that turn organiser-controlled text into a literal of each target language.
/// Each one makes the text *show literally*: no quote, backslash, newline, template tag or
/// markup in the input can end the literal or be interpreted by the target's parser.
public enum Escaping {
    /// Characters that reorder or hide text (Trojan Source, CVE-2021-42574): kept in the
    /// value, but written as escapes in source code so a reviewer sees them.
    static func isInvisibleFormatting(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        // Printable ASCII, most of any text, without the Unicode property lookup.
        case 0x20...0x7E: return false
        case 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2069, 0xFEFF: return true
        default: return scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
            || scalar.value == 0x2028 || scalar.value == 0x2029
        }
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// Applies `rule` to every scalar; nil keeps the scalar as it is.
    private static func escaped(_ text: String, _ rule: (Unicode.Scalar) -> String?) -> String {
        // Most texts need no escape at all: return them as they are, without rebuilding them
        // scalar by scalar.
        guard let first = text.unicodeScalars.firstIndex(where: { rule($0) != nil }) else { return text }
        var out = String(Substring(text.unicodeScalars[..<first]))
        for scalar in text.unicodeScalars[first...] {
            if let replacement = rule(scalar) {
                out += replacement
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Backslash escapes that Python, JavaScript, TOML and PO strings share.
    private static func backslashEscape(_ scalar: Unicode.Scalar, quote: Unicode.Scalar) -> String? {
        switch scalar {
        case "\\": return "\\\\"
        case quote: return "\\" + String(quote)
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default: return nil
        }
    }

    private static func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        scalar.value <= 0xFFFF ? "\\u" + hex(scalar.value, width: 4) : "\\U" + hex(scalar.value, width: 8)
    }

    /// A complete single-quoted Python `str` literal.
    public static func python(_ text: String) -> String {
        "'" + escaped(text) { scalar in
            backslashEscape(scalar, quote: "'")
                ?? (isInvisibleFormatting(scalar) ? (scalar.value <= 0xFF ? "\\x" + hex(scalar.value, width: 2) : unicodeEscape(scalar)) : nil)
        } + "'"
    }

    /// A complete JSON string literal, also safe inside JavaScript source and HTML
    /// (`<`, `>`, `&` and `'` as \u escapes so `</script>` and `<!--` cannot appear).
    public static func javaScript(_ text: String) -> String {
        "\"" + escaped(text) { scalar in
            if let escape = backslashEscape(scalar, quote: "\"") { return escape }
            if "<>&'".unicodeScalars.contains(scalar) || isInvisibleFormatting(scalar) { return "\\u" + hex(scalar.value, width: 4) }
            return nil
        } + "\""
    }

    /// A complete JSON string literal (RFC 8259), other text kept as UTF-8 so people can read
    /// the file: only quotes, backslashes and control characters are escaped.
    public static func json(_ text: String) -> String {
        "\"" + escaped(text) { scalar in
            backslashEscape(scalar, quote: "\"") ?? (scalar.value < 0x20 || scalar.value == 0x7f ? "\\u" + hex(scalar.value, width: 4) : nil)
        } + "\""
    }

    /// A complete TOML basic string.
    public static func toml(_ text: String) -> String {
        "\"" + escaped(text) { scalar in
            backslashEscape(scalar, quote: "\"") ?? (isInvisibleFormatting(scalar) ? unicodeEscape(scalar) : nil)
        } + "\""
    }

    /// HTML text that a Django template shows literally: markup characters and the braces
    /// that open `{{`, `{%` and `{#` become character references.
    public static func html(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#x27;"
            case "{": out += "&#123;"
            case "}": out += "&#125;"
            case "%": out += "&#37;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The inside of a gettext PO string ("…" without the quotes).
    public static func po(_ text: String) -> String {
        escaped(text) { backslashEscape($0, quote: "\"") }
    }

    /// Markdown text that renders literally: punctuation with meaning is backslash-escaped,
    /// markup characters become entities, line breaks become spaces.
    public static func markdown(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\n", "\r": out += " "
            case "\\", "`", "*", "_", "{", "}", "[", "]", "(", ")", "#", "+", "-", ".", "!", "|", "~", "\"", "'", "$", "%", "=", ":":
                out += "\\"
                out.unicodeScalars.append(scalar)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
