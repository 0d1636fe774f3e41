/// Escapers that turn organiser-controlled text into a literal of each target language.
/// Each one makes the text *show literally*: no quote, backslash, newline, template tag or
/// markup in the input can end the literal or be interpreted by the target's parser.
public enum Escaping {
    /// Characters that reorder or hide text (Trojan Source, CVE-2021-42574): kept in the
    /// value, but written as escapes in source code so a reviewer sees them.
    static func isInvisibleFormatting(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2069, 0xFEFF: return true
        default: return scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
            || scalar.value == 0x2028 || scalar.value == 0x2029
        }
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// A complete single-quoted Python `str` literal.
    public static func python(_ text: String) -> String {
        var out = "'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isInvisibleFormatting(scalar) {
                    out += scalar.value <= 0xFF ? "\\x" + hex(scalar.value, width: 2) : "\\u" + hex(scalar.value, width: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "'"
    }

    /// A complete JSON string literal, also safe inside JavaScript source and HTML
    /// (`<`, `>` and `&` as \u escapes so `</script>` and `<!--` cannot appear).
    public static func javaScript(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "'": out += "\\u" + hex(scalar.value, width: 4)
            default:
                if isInvisibleFormatting(scalar) {
                    out += "\\u" + hex(scalar.value, width: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A complete TOML basic string.
    public static func toml(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isInvisibleFormatting(scalar) {
                    out += "\\u" + hex(scalar.value, width: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
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
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
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
