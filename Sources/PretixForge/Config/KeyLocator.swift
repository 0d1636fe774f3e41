import FoundationEssentials

/// Finds the line of `table.key` in TOML source. TOMLKit reports lines for syntax errors
/// only, so this light scan gives value errors a line too. It understands `[table]`
/// headers and `key = value` lines, which is every shape a forge config takes.
struct KeyLocator {
    private var lines: [String: Int] = [:]
    private var valueLines: [String: String] = [:]

    /// Scanned as UTF-8 bytes, trimming TOML's whitespace (space, tab; and CRLF's CR): this runs over every
    /// line of every config, and Unicode-aware trimming of each line was most of a config load.
    init(source: String) {
        var table = ""
        let bytes = Array(source.utf8)
        for (index, rawLine) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let line = ASCIIPattern.trimmingBlanks(rawLine)
            if line.first == UInt8(ascii: "["), let close = line.firstIndex(of: UInt8(ascii: "]")) {
                table = String(decoding: ASCIIPattern.trimmingBlanks(line[(line.startIndex + 1)..<close]), as: UTF8.self)
                lines[table] = lines[table] ?? index + 1
            } else if let key = Self.assignedKey(line) {
                let path = table.isEmpty ? key : "\(table).\(key)"
                lines[path] = lines[path] ?? index + 1
                valueLines[path] = String(decoding: line, as: UTF8.self)
            }
        }
    }

    /// The key of a `key = value` (or `"key" = value`) line, nil for anything else.
    static func assignedKey(_ line: String) -> String? {
        assignedKey(ArraySlice(line.utf8))
    }

    /// Over the line's bytes, as `init` scans: a key is ASCII, and Foundation's Unicode-aware
    /// trimming of every line's key was a tenth of loading a config.
    static func assignedKey(_ line: ArraySlice<UInt8>) -> String? {
        guard let equals = line.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        var key = ASCIIPattern.trimmingBlanks(line[..<equals])
        let quote = UInt8(ascii: "\"")
        if key.count >= 2, key.first == quote, key.last == quote { key = key.dropFirst().dropLast() }
        let keyByte: (UInt8) -> Bool = { ASCIIPattern.isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        guard !key.isEmpty, key.allSatisfy(keyByte) else { return nil }
        return String(decoding: key, as: UTF8.self)
    }

    /// The line of the key, or of the nearest enclosing key or table that has one. An array
    /// element (`repository.unmanaged[2]`) is found at its array's key.
    func line(of keyPath: String) -> Int? {
        let withoutIndex = keyPath.hasSuffix("]") ? String(keyPath[..<(keyPath.lastIndex(of: "[") ?? keyPath.endIndex)]) : keyPath
        var parts = withoutIndex.split(separator: ".")
        while !parts.isEmpty {
            if let line = lines[parts.joined(separator: ".")] { return line }
            parts.removeLast()
        }
        return nil
    }

    /// TOMLKit hands strings over as C strings, which end at a NUL; spot the escape in the source.
    func valueHasNUL(_ keyPath: String) -> Bool {
        // Most values hold no backslash, and then no escape: skip the searches.
        guard let line = valueLines[keyPath], line.utf8.contains(UInt8(ascii: "\\")) else { return false }
        return line.contains("\\u0000") || line.contains("\\U00000000")
    }
}
