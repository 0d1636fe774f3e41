import FoundationEssentials
import Glibc

/// The few text helpers the tool needs from outside FoundationEssentials, written against the
/// standard library: Foundation's own (trimmingCharacters(in:), String(format:), an Error's
/// localizedDescription) would link all of Foundation and ICU's data into the static binary
/// (Package.swift).
public enum TrimmedCharacters: Sendable {
    /// Tab and the Unicode space separators (Zs), as Foundation's CharacterSet.whitespaces.
    case whitespaces
    /// U+000A…U+000D, U+0085, U+2028 and U+2029, as CharacterSet.newlines.
    case newlines
    case whitespacesAndNewlines

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        // Config and template text is nearly all ASCII, where no property lookup is needed.
        if scalar.isASCII {
            let isSpace = scalar == " " || scalar == "\t"
            let isNewline = (0x0A...0x0D).contains(scalar.value)
            switch self {
            case .whitespaces: return isSpace
            case .newlines: return isNewline
            case .whitespacesAndNewlines: return isSpace || isNewline
            }
        }
        let isSpace = scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator
        let isNewline = (0x0A...0x0D).contains(scalar.value) || [0x85, 0x2028, 0x2029].contains(scalar.value)
        switch self {
        case .whitespaces: return isSpace
        case .newlines: return isNewline
        case .whitespacesAndNewlines: return isSpace || isNewline
        }
    }
}

extension StringProtocol {
    /// The text without the given characters at either end.
    public func trimming(_ characters: TrimmedCharacters) -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !characters.contains($0) }),
              let last = scalars.lastIndex(where: { !characters.contains($0) }) else { return "" }
        // Already trimmed (the usual case): no need to rebuild it scalar by scalar.
        if first == scalars.startIndex, scalars.index(after: last) == scalars.endIndex { return String(self) }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}

extension BinaryInteger {
    /// Lower-case hexadecimal, zero-padded to `width` digits ("%0*x").
    public func hexDigits(width: Int) -> String {
        String(self, radix: 16).leftPadded(to: width)
    }
}

extension String {
    /// Zero-padded on the left to `width` characters.
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

/// What went wrong, in words: the system's message for a file-system error (as
/// localizedDescription gave through Foundation), else the error's own description.
public func describe(_ error: any Error) -> String {
    if let error = error as? CocoaError {
        // The value of Foundation's NSUnderlyingErrorKey, which FoundationEssentials does not export.
        if let underlying = error.userInfo["NSUnderlyingError"] as? POSIXError {
            return String(cString: strerror(underlying.code.rawValue))
        }
        if let path = error.filePath { return "\(error.code) (\(path))" }
    }
    if let error = error as? POSIXError { return String(cString: strerror(error.code.rawValue)) }
    return String(describing: error)
}
