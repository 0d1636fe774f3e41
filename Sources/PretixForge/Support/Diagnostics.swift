/// Where a problem was found: the file, and the line when the parser can tell.
public struct SourceLocation: Sendable, Hashable {
    public var file: String
    public var line: Int?

    public init(file: String, line: Int? = nil) {
        self.file = file
        self.line = line
    }

    public var description: String {
        line.map { "\(file):\($0)" } ?? file
    }
}

/// One problem a user can act on: where, which key, what is wrong, and how to fix it.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var keyPath: String?
    public var message: String
    public var fix: String?

    public init(_ message: String, at location: SourceLocation, keyPath: String? = nil, fix: String? = nil) {
        self.location = location
        self.keyPath = keyPath
        self.message = message
        self.fix = fix
    }

    public var description: String {
        var text = "\(location.description): error: "
        if let keyPath { text += "\(keyPath): " }
        text += message
        if let fix { text += "\n    fix: \(fix)" }
        return text
    }
}

/// Every problem found in one pass. Nothing is written to disk while one exists.
public struct ForgeError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    public init(_ message: String, at location: SourceLocation, keyPath: String? = nil, fix: String? = nil) {
        self.diagnostics = [Diagnostic(message, at: location, keyPath: keyPath, fix: fix)]
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}
