import Glibc

/// Character-class checks for the simple shapes config values and template tags take.
/// Plain loops rather than Swift Regex: these run for every key and tag of every variant,
/// and regex construction dominated batch-build time.
enum ASCIIPattern {
    static func isLower(_ c: UInt8) -> Bool { c >= 97 && c <= 122 }
    static func isUpper(_ c: UInt8) -> Bool { c >= 65 && c <= 90 }
    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    static func isLetter(_ c: UInt8) -> Bool { isLower(c) || isUpper(c) }
    static func isAlphanumeric(_ c: UInt8) -> Bool { isLetter(c) || isDigit(c) }

    /// Space, tab or carriage return: what the line-based parsers (`.po`, TOML key lines) trim.
    static func isBlank(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 13 }

    /// `bytes` without blanks at either end.
    static func trimmingBlanks(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard let first = bytes.firstIndex(where: { !isBlank($0) }), let last = bytes.lastIndex(where: { !isBlank($0) }) else { return [] }
        return bytes[first...last]
    }

    /// Non-overlapping occurrences of `pattern` in `bytes`, counted left to right as
    /// `components(separatedBy:)` splits.
    /// Over raw buffers, first byte first: this runs over every line of every template at each
    /// start, and the generic slice comparison was 3 % of a build.
    static func occurrences(of pattern: [UInt8], in bytes: ArraySlice<UInt8>) -> Int {
        guard let head = pattern.first, bytes.count >= pattern.count else { return 0 }
        return bytes.withUnsafeBufferPointer { text in
            pattern.withUnsafeBufferPointer { needle in
                guard let start = text.baseAddress, let needleStart = needle.baseAddress else { return 0 }
                var found = 0
                var index = 0
                let last = text.count - needle.count
                while index <= last {
                    if text[index] == head && memcmp(start + index, needleStart, needle.count) == 0 {
                        found += 1
                        index += needle.count
                    } else {
                        index += 1
                    }
                }
                return found
            }
        }
    }

    /// `text` is `first` followed by `rest`, with a length in `length`.
    static func matches<S: StringProtocol>(_ text: S, first: (UInt8) -> Bool, rest: (UInt8) -> Bool,
                                           length: ClosedRange<Int> = 1...Int.max) -> Bool {
        let bytes = Array(text.utf8)
        guard length.contains(bytes.count), let head = bytes.first, first(head) else { return false }
        return bytes.dropFirst().allSatisfy(rest)
    }
}
