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

        for (index, rawLine) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = Self.trimmed(rawLine)
            let lineNumber = index + 1
            if line.isEmpty || line.hasPrefix("#~") { continue }
            if line.hasPrefix("#") {
                if line.hasPrefix("#,") && line.contains("fuzzy") {
                    // The flag belongs to the entry that follows it.
                    if hasContent { finish() }
                    current.fuzzy = true
                }
                continue
            }
            if line.hasPrefix("\"") {
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
            guard let space = line.firstIndex(of: " ") else {
                throw ParseError(message: "unexpected line '\(line)'", line: lineNumber)
            }
            let keyword = String(line[..<space])
            let value = try unquote(Self.trimmed(line[line.index(after: space)...]), line: lineNumber)
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
                guard let match = keyword.wholeMatch(of: /msgstr\[([0-9]+)\]/), let n = Int(match.output.1) else {
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

    /// Spaces and tabs trimmed; Foundation's CharacterSet trimming dominated parse time.
    private static func trimmed(_ text: Substring) -> Substring {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = text.firstIndex(where: { !isBlank($0) }), let last = text.lastIndex(where: { !isBlank($0) }) else { return "" }
        return text[first...last]
    }

    private static func unquote(_ text: Substring, line: Int) throws(ParseError) -> String {
        let scalars = text.unicodeScalars
        guard scalars.count >= 2, scalars.first == "\"", scalars.last == "\"" else {
            throw ParseError(message: "expected a quoted string", line: line)
        }
        var out = String.UnicodeScalarView()
        var escaping = false
        for scalar in scalars.dropFirst().dropLast() {
            if escaping {
                switch scalar {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "\\": out.append("\\")
                case "\"": out.append("\"")
                default: throw ParseError(message: "unknown escape \\\(scalar)", line: line)
                }
                escaping = false
            } else if scalar == "\\" {
                escaping = true
            } else if scalar == "\"" {
                throw ParseError(message: "unescaped quote inside a string", line: line)
            } else {
                out.append(scalar)
            }
        }
        if escaping { throw ParseError(message: "string ends in a backslash", line: line) }
        return String(out)
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

        let count = UInt32(entries.count)
        let headerSize: UInt32 = 28
        let originalsOffset = headerSize
        let translationsOffset = originalsOffset + 8 * count
        var stringOffset = translationsOffset + 8 * count
        var data = Data()
        func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        for value: UInt32 in [0x9504_12de, 0, count, originalsOffset, translationsOffset, 0, stringOffset] { append(value) }
        var strings = Data()
        var tables: [[UInt32]] = [[], []]
        for column in 0..<2 {
            for entry in entries {
                let bytes = column == 0 ? entry.key : entry.value
                tables[column] += [UInt32(bytes.count), stringOffset]
                strings.append(contentsOf: bytes + [0])
                stringOffset += UInt32(bytes.count + 1)
            }
        }
        for value in tables[0] + tables[1] { append(value) }
        data.append(strings)
        return data
    }
}
