/// A path pattern as `.gitignore` users write them, relative to the tree: `*` matches within one
/// path segment, `?` one character of a segment, and a `**` segment any number of segments
/// (`docs/**` is everything under docs/, `**/*.md` every Markdown file).
public struct PathGlob: Sendable, Equatable, CustomStringConvertible {
    public let pattern: String
    private let segments: [String]

    /// Nil with the reason when the pattern cannot be one of these globs.
    public static func problem(with pattern: String) -> String? {
        if pattern.isEmpty { return "is empty" }
        if pattern.hasPrefix("/") { return "starts with '/'; patterns are relative to the tree" }
        if pattern.contains("\\") { return "contains '\\'; write paths with '/'" }
        if pattern.contains(where: { "[]{}!".contains($0) }) { return "uses [ ] { } or !, which these patterns do not support" }
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: { $0.isEmpty }) { return "has an empty path segment ('//' or a trailing '/')" }
        if parts.contains(where: { $0 == "." || $0 == ".." }) { return "contains '.' or '..' segments" }
        if parts.contains(where: { $0.contains("**") && $0 != "**" }) { return "uses '**' inside a segment; write it as a segment of its own, e.g. docs/**" }
        return nil
    }

    public init?(_ pattern: String) {
        guard Self.problem(with: pattern) == nil else { return nil }
        self.pattern = pattern
        self.segments = pattern.split(separator: "/").map(String.init)
    }

    public var description: String { pattern }

    public func matches(_ path: String) -> Bool {
        Self.match(segments[...], path.split(separator: "/").map(String.init)[...])
    }

    private static func match(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>) -> Bool {
        guard let head = pattern.first else { return path.isEmpty }
        if head == "**" {
            // Zero or more whole segments.
            var rest = path
            while true {
                if match(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        }
        guard let segment = path.first, matchSegment(Array(head.unicodeScalars)[...], Array(segment.unicodeScalars)[...]) else { return false }
        return match(pattern.dropFirst(), path.dropFirst())
    }

    private static func matchSegment(_ pattern: ArraySlice<Unicode.Scalar>, _ text: ArraySlice<Unicode.Scalar>) -> Bool {
        guard let head = pattern.first else { return text.isEmpty }
        switch head {
        case "*":
            var rest = text
            while true {
                if matchSegment(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        case "?":
            return !text.isEmpty && matchSegment(pattern.dropFirst(), text.dropFirst())
        default:
            return text.first == head && matchSegment(pattern.dropFirst(), text.dropFirst())
        }
    }
}
