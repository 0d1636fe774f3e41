/// Character-class checks for the simple shapes config values and template tags take.
/// Plain loops rather than Swift Regex: these run for every key and tag of every variant,
/// and regex construction dominated batch-build time.
enum ASCIIPattern {
    static func isLower(_ c: UInt8) -> Bool { c >= 97 && c <= 122 }
    static func isUpper(_ c: UInt8) -> Bool { c >= 65 && c <= 90 }
    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    static func isLetter(_ c: UInt8) -> Bool { isLower(c) || isUpper(c) }
    static func isAlphanumeric(_ c: UInt8) -> Bool { isLetter(c) || isDigit(c) }

    /// `text` is `first` followed by `rest`, with a length in `length`.
    static func matches<S: StringProtocol>(_ text: S, first: (UInt8) -> Bool, rest: (UInt8) -> Bool,
                                           length: ClosedRange<Int> = 1...Int.max) -> Bool {
        let bytes = Array(text.utf8)
        guard length.contains(bytes.count), let head = bytes.first, first(head) else { return false }
        return bytes.dropFirst().allSatisfy(rest)
    }
}
