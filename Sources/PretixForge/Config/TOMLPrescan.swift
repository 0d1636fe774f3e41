/// What must be known about TOML source before toml++ parses it.
///
/// toml++ refuses arrays and inline tables nested deeper than 256 levels (its
/// TOML_MAX_NESTED_VALUES), but not dotted keys or table headers: `x.a.a.a… = 1` some ten
/// thousand levels deep overflows the stack in the parser's recursion over the finished tree,
/// and the process dies. The depth is therefore measured here, counting every level a key,
/// header, array or inline table adds, and a config that goes too deep is never parsed.
///
/// Its message for a one-line string missing its closing quote is about control characters (the
/// line break it runs into), so the lines holding such a string are noted for a clearer one.
struct TOMLPrescan {
    static let maximumDepth = 256

    /// Where the nesting first goes past `maximumDepth`: the line, and the start of the
    /// outermost key or header on it.
    private(set) var tooDeep: (line: Int, key: String)?
    /// Lines where a `"…"` or `'…'` string reaches the end of its line unclosed.
    private(set) var unterminatedStringLines: Set<Int> = []

    private enum Context { case key, header, value }

    init(source: String) {
        let bytes = Array(source.utf8)
        var line = 1
        var context = Context.key
        // Segments of the key or header being read; quoted segments may hold dots.
        var segments = 1
        var tableDepth = 0
        // The depth inside each open array or inline table, innermost last.
        var open: [(isTable: Bool, depth: Int)] = []
        var valueDepth = 0
        // The outermost key or header of the line, for the message.
        var keyStart: Int?
        var keyEnd: Int?
        var index = 0
        func exceeds(_ depth: Int) -> Bool {
            guard depth > Self.maximumDepth else { return false }
            let start = keyStart ?? index
            tooDeep = (line, Self.shown(ASCIIPattern.trimmingBlanks(bytes[start..<max(start, keyEnd ?? index)])))
            return true
        }
        while index < bytes.count {
            let byte = bytes[index]
            if keyStart == nil, open.isEmpty, context != .value, !ASCIIPattern.isBlank(byte), byte != UInt8(ascii: "\n") {
                keyStart = index
            }
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                if open.isEmpty {
                    context = .key
                    segments = 1
                    keyStart = nil
                    keyEnd = nil
                }
            case UInt8(ascii: "#"):
                while index + 1 < bytes.count, bytes[index + 1] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                index = skipString(bytes, from: index, line: &line)
                continue
            case UInt8(ascii: ".") where context != .value:
                segments += 1
            case UInt8(ascii: "[") where context == .key && open.isEmpty:
                context = .header
                segments = 1
                // An array of tables adds a level for the array.
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "[") {
                    segments += 1
                    index += 1
                }
                keyStart = index + 1
            case UInt8(ascii: "]") where context == .header:
                keyEnd = index
                tableDepth = segments
                if exceeds(tableDepth) { return }
                context = .value
            case UInt8(ascii: "[") where context == .value, UInt8(ascii: "{") where context == .value:
                valueDepth += 1
                if exceeds(valueDepth) { return }
                open.append((byte == UInt8(ascii: "{"), valueDepth))
                if byte == UInt8(ascii: "{") {
                    context = .key
                    segments = 1
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                _ = open.popLast()
                valueDepth = open.last?.depth ?? 0
                context = .value
            case UInt8(ascii: "=") where context == .key:
                if open.isEmpty { keyEnd = index }
                valueDepth = (open.last?.depth ?? tableDepth) + segments
                if exceeds(valueDepth) { return }
                context = .value
            case UInt8(ascii: ",") where open.last?.isTable == true:
                context = .key
                segments = 1
            default:
                break
            }
            index += 1
        }
    }

    /// Skips the string opening at `start` and returns the index after it.
    private mutating func skipString(_ bytes: [UInt8], from start: Int, line: inout Int) -> Int {
        let quote = bytes[start]
        let escapes = quote == UInt8(ascii: "\"")
        let multiline = start + 2 < bytes.count && bytes[start + 1] == quote && bytes[start + 2] == quote
        var index = start + (multiline ? 3 : 1)
        while index < bytes.count {
            let byte = bytes[index]
            if escapes, byte == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] != UInt8(ascii: "\n") {
                index += 2
                continue
            }
            if byte == UInt8(ascii: "\n") {
                guard multiline else {
                    unterminatedStringLines.insert(line)
                    return index
                }
                line += 1
            }
            if byte == quote {
                guard multiline else { return index + 1 }
                if index + 2 < bytes.count, bytes[index + 1] == quote, bytes[index + 2] == quote {
                    // Up to two quotes may end the text right before the closing three.
                    var end = index + 3
                    while end < bytes.count, end < index + 5, bytes[end] == quote { end += 1 }
                    return end
                }
            }
            index += 1
        }
        if !multiline { unterminatedStringLines.insert(line) }
        return index
    }

    /// The start of a key, short enough for a message.
    private static func shown(_ key: ArraySlice<UInt8>) -> String {
        let limit = 40
        guard key.count > limit else { return String(decoding: key, as: UTF8.self) }
        var end = key.startIndex + limit
        // Cut before a UTF-8 continuation byte, never inside a character.
        while end > key.startIndex, key[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: key[key.startIndex..<end], as: UTF8.self) + "…"
    }
}
