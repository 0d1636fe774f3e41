import FoundationEssentials

/// A gettext catalogue: parses `.po` text and compiles the `.mo` file Django loads.
/// Written here rather than shelling out to msgfmt so builds need nothing but this binary
/// and give the same bytes everywhere.
struct GettextCatalog {
    struct ParseError: Error {
        var message: String
        var line: Int
    }

    struct Message {
        var context: String?
        var id: String
        var idPlural: String?
        var translations: [String]
        var fuzzy: Bool
    }

    var messages: [Message]

    /// Parsed as UTF-8 bytes: every build compiles every catalogue, and Character-level string
    /// scanning made this a tenth of a build.
    static func parse(_ source: String) throws(ParseError) -> GettextCatalog {
        var messages: [Message] = []
        var current = Message(context: nil, id: "", idPlural: nil, translations: [], fuzzy: false)
        var hasContent = false
        /// Which string the next continuation line appends to.
        enum Field { case context, id, plural, translation(Int) }
        var field: Field?

        func finish() {
            if hasContent { messages.append(current) }
            current = Message(context: nil, id: "", idPlural: nil, translations: [], fuzzy: false)
            hasContent = false
        }

        let bytes = Array(source.utf8)
        for (index, rawLine) in bytes.split(separator: newline, omittingEmptySubsequences: false).enumerated() {
            let line = ASCIIPattern.trimmingBlanks(rawLine)
            let lineNumber = index + 1
            if line.isEmpty || line.starts(with: "#~".utf8) { continue }
            if line.first == hash {
                if line.starts(with: "#,".utf8) && ASCIIPattern.occurrences(of: Array("fuzzy".utf8), in: line) > 0 {
                    // The flag belongs to the entry that follows it.
                    if hasContent { finish() }
                    current.fuzzy = true
                }
                continue
            }
            if line.first == quote {
                let value = try unquote(line, line: lineNumber)
                switch field {
                case .context: current.context = (current.context ?? "") + value
                case .id: current.id += value
                case .plural: current.idPlural = (current.idPlural ?? "") + value
                case .translation(let n): current.translations[n] += value
                case nil: throw ParseError(message: "string without a keyword", line: lineNumber)
                }
                continue
            }
            guard let space = line.firstIndex(of: UInt8(ascii: " ")) else {
                throw ParseError(message: "unexpected line '\(String(decoding: line, as: UTF8.self))'", line: lineNumber)
            }
            let keyword = String(decoding: line[..<space], as: UTF8.self)
            let value = try unquote(ASCIIPattern.trimmingBlanks(line[(space + 1)...]), line: lineNumber)
            switch keyword {
            case "msgctxt":
                if hasContent { finish() }
                current.context = value
                hasContent = true
                field = .context
            case "msgid":
                if hasContent && !(current.context != nil && current.id.isEmpty && current.translations.isEmpty) { finish() }
                current.id = value
                hasContent = true
                field = .id
            case "msgid_plural":
                current.idPlural = value
                field = .plural
            case "msgstr":
                current.translations = [value]
                field = .translation(0)
            default:
                guard let n = pluralIndex(keyword) else {
                    throw ParseError(message: "unknown keyword '\(keyword)'", line: lineNumber)
                }
                guard n == current.translations.count else {
                    throw ParseError(message: "plural forms out of order", line: lineNumber)
                }
                current.translations.append(value)
                field = .translation(n)
            }
        }
        if hasContent { finish() }
        return GettextCatalog(messages: messages)
    }

    private static let newline = UInt8(ascii: "\n")
    private static let hash = UInt8(ascii: "#")
    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    /// N of `msgstr[N]`.
    private static func pluralIndex(_ keyword: String) -> Int? {
        guard keyword.hasPrefix("msgstr["), keyword.hasSuffix("]") else { return nil }
        let digits = keyword.utf8.dropFirst("msgstr[".utf8.count).dropLast()
        guard !digits.isEmpty, digits.allSatisfy(ASCIIPattern.isDigit) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    private static func unquote(_ text: ArraySlice<UInt8>, line: Int) throws(ParseError) -> String {
        guard text.count >= 2, text.first == quote, text.last == quote else {
            throw ParseError(message: "expected a quoted string", line: line)
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var escaping = false
        let body = text.dropFirst().dropLast()
        for index in body.indices {
            let byte = body[index]
            if escaping {
                switch byte {
                case UInt8(ascii: "n"): out.append(newline)
                case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                case backslash, quote: out.append(byte)
                default:
                    let escaped = String(decoding: body[index...], as: UTF8.self).unicodeScalars.first.map(String.init) ?? ""
                    throw ParseError(message: "unknown escape \\\(escaped)", line: line)
                }
                escaping = false
            } else if byte == backslash {
                escaping = true
            } else if byte == quote {
                throw ParseError(message: "unescaped quote inside a string", line: line)
            } else {
                out.append(byte)
            }
        }
        if escaping { throw ParseError(message: "string ends in a backslash", line: line) }
        return String(decoding: out, as: UTF8.self)
    }

    /// GNU `.mo` (little endian, revision 0, no hash table), entries sorted by key bytes.
    /// Like msgfmt, it leaves out untranslated and fuzzy messages, keeping the header.
    func compiled() -> Data {
        var entries: [(key: [UInt8], value: [UInt8])] = []
        for message in messages {
            let translated = !message.translations.isEmpty && message.translations.allSatisfy { !$0.isEmpty }
            let isHeader = message.id.isEmpty && message.context == nil
            guard translated, isHeader || !message.fuzzy else { continue }
            var key = Array((message.context.map { $0 + "\u{4}" } ?? "").utf8) + Array(message.id.utf8)
            if let plural = message.idPlural { key += [0] + Array(plural.utf8) }
            let value = Array(message.translations.joined(separator: "\0").utf8)
            entries.append((key, value))
        }
        entries.sort { $0.key.lexicographicallyPrecedes($1.key) }

        // Written into one buffer of the final size: appending to Data piece by piece was
        // half of compiling a catalogue.
        let count = UInt32(entries.count)
        let headerSize: UInt32 = 28
        let originalsOffset = headerSize
        let translationsOffset = originalsOffset + 8 * count
        let stringsOffset = translationsOffset + 8 * count
        let stringsSize = entries.reduce(0) { $0 + $1.key.count + $1.value.count + 2 }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(stringsOffset) + stringsSize)
        func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        for value: UInt32 in [0x9504_12de, 0, count, originalsOffset, translationsOffset, 0, stringsOffset] { append(value) }
        let strings = entries.map(\.key) + entries.map(\.value)
        var stringOffset = stringsOffset
        for length in strings.map(\.count) {
            append(UInt32(length))
            append(stringOffset)
            stringOffset += UInt32(length) + 1
        }
        for string in strings {
            bytes.append(contentsOf: string)
            bytes.append(0)
        }
        return Data(bytes)
    }
}
