import FoundationEssentials
import Dispatch
import Mustache

/// A rendered plugin source tree: relative path → bytes, in memory until a stage writes it.
public struct PluginTree: Sendable, Equatable {
    public var files: [String: Data]
    /// Digest of the overlay it was rendered with, for the manifests that record it.
    public var overlayDigest: String?

    public init(files: [String: Data] = [:], overlayDigest: String? = nil) {
        self.files = files
        self.overlayDigest = overlayDigest
    }

    /// Paths in byte order, the order archives and comparisons use.
    public var sortedPaths: [String] {
        files.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

/// A set of template files keyed by their path under `Templates/`.
public struct TemplateSet: Sendable {
    public var files: [String: Data]
    /// The maintainer's overlay applied to the built-in templates, if any.
    public var overlay: Overlay?

    public init(files: [String: Data]) {
        self.files = files
    }

    /// The templates compiled into the binary.
    public static var embedded: TemplateSet {
        TemplateSet(files: EmbeddedFiles.folder("Templates"))
    }
}

/// Render stage: config + templates → plugin tree.
public struct PluginRenderer: Sendable {
    /// Path segment replaced by the module name, so `Templates/` mirrors the generated tree.
    static let moduleSegment = "__module__"
    static let tagOpener = "<%"
    static let tagCloser = "%>"
    static let delimiterPrefix = "{{% CONTENT_TYPE: TEXT }}{{=\(tagOpener) \(tagCloser)=}}"
    static let vectorsPath = "tests/webhook-signatures.json"
    /// A file every generated tree has, by which `generate` recognises a folder it may replace.
    public static let treeMarker = "pretixplugin.toml"

    /// A template checked and parsed once, rendered once per variant.
    struct CompiledTemplate: Sendable {
        /// Runs of whole lines: those without a tag are kept as text, those with one parsed.
        enum Piece: Sendable {
            case text(String)
            case template(MustacheTemplate)
        }

        var path: String
        /// The file errors name (source(of:overlay:)).
        var source: String
        var pieces: [Piece]

        func render(_ context: [String: [String: Any]]) -> String {
            pieces.map { piece in
                switch piece {
                case .text(let text): text
                case .template(let template): template.render(context)
                }
            }.joined()
        }
    }

    private let compiled: [CompiledTemplate]
    /// Files copied as they are: images and fonts, and text with no tag in it.
    private let verbatim: [(path: String, data: Data)]
    private let overlayDigest: String?
    /// Template path → the file errors name, for the catalogues (compiled after rendering).
    private let catalogueSources: [String: String]

    /// Checks and parses every template up front, reporting all problems together, so a
    /// batch of variants pays for parsing once. Parsing was most of a single build's work
    /// (make bench, perf), so Mustache gets only the lines holding a tag: most of the plugin's
    /// Python has none (its values come from conf.py), and templates use variable tags only
    /// (checkTags), which Mustache renders in place, so a line without one is output as it is.
    /// Each template is independent; they are parsed on all cores.
    public init(templates: TemplateSet = .embedded) throws(ForgeError) {
        let variables = TemplateContext.variableKinds
        let entries = templates.files.sorted(by: { $0.key < $1.key })
        let outcomes = ConcurrentSlots<Result<CompiledTemplate, ForgeError>>(count: entries.count)
        DispatchQueue.concurrentPerform(iterations: entries.count) { index in
            let (path, data) = entries[index]
            guard let text = String(data: data, encoding: .utf8), !Self.isBinary(path), Self.hasTags(text) else { return }
            outcomes.set(index, Result { () throws(ForgeError) -> CompiledTemplate in
                let source = Self.source(of: path, overlay: templates.overlay)
                try Self.checkTags(in: text, source: source, variables: variables)
                return CompiledTemplate(path: path, source: source, pieces: try Self.pieces(of: text, source: source))
            })
        }
        var compiled: [CompiledTemplate] = []
        var verbatim: [(String, Data)] = []
        var problems: [Diagnostic] = []
        for (entry, outcome) in zip(entries, outcomes.values) {
            switch outcome {
            case nil: verbatim.append(entry)
            case .success(let template)?: compiled.append(template)
            case .failure(let error)?: problems += error.diagnostics
            }
        }
        if !problems.isEmpty { throw ForgeError(problems) }
        self.compiled = compiled
        self.verbatim = verbatim
        self.overlayDigest = templates.overlay?.digest
        self.catalogueSources = Dictionary(uniqueKeysWithValues: templates.files.keys.filter { $0.hasSuffix(".po") }
            .map { ($0, Self.source(of: $0, overlay: templates.overlay)) })
    }

    public func render(_ config: ForgeConfig) throws(ForgeError) -> PluginTree {
        let context = TemplateContext.make(config)
        var tree = PluginTree(overlayDigest: overlayDigest)
        for (path, data) in verbatim {
            tree.files[Self.outputPath(path, module: config.package.module)] = data
        }
        // Templates render independently; on all cores, as a single variant's render would
        // otherwise leave all but one idle.
        let outputs = ConcurrentSlots<String>(count: compiled.count)
        let shared = ReadOnlyContext(values: context)
        DispatchQueue.concurrentPerform(iterations: compiled.count) { index in
            outputs.set(index, compiled[index].render(shared.values))
        }
        for (item, output) in zip(compiled, outputs.values.map { $0! }) {
            // checkTags makes this unreachable for tags it sees; kept as the last line of defence.
            // The marker starts with U+0001, which no template holds: most outputs need no search.
            if output.utf8.contains(1), output.contains(ConfigText.unescapedMarker) {
                throw ForgeError("free text is inserted without an escaping transform", at: SourceLocation(file: item.source),
                                 fix: "wrap it, e.g. <% py(provider.public_name) %>")
            }
            tree.files[Self.outputPath(item.path, module: config.package.module)] = Data(output.utf8)
        }
        tree.files["LICENSE"] = Data(config.package.licenseText.utf8)
        if let logo = config.branding.logo {
            tree.files["\(config.package.module)/static/\(config.package.module)/\(logo.fileName)"] = logo.data
        }
        tree.files[Self.vectorsPath] = EmbeddedFiles.data("Vectors/webhook-signatures.json")
        let catalogues = catalogueSources.map { (Self.outputPath($0.key, module: config.package.module), $0.value) }
        try compileCatalogues(in: &tree, sources: Dictionary(uniqueKeysWithValues: catalogues))
        try RepositoryKit.apply(config.repository, to: &tree)
        return tree
    }

    /// The render context shared by the threads rendering templates: built before them and only
    /// read while they run (its values are strings, numbers and immutable config texts).
    private struct ReadOnlyContext: @unchecked Sendable {
        let values: [String: [String: Any]]
    }

    static func outputPath(_ templatePath: String, module: String) -> String {
        templatePath.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0 == moduleSegment ? module : String($0) }
            .joined(separator: "/")
    }

    /// Where a template comes from, as errors name it: the maintainer's overlay file, or the built-in one.
    static func source(of path: String, overlay: Overlay?) -> String {
        guard let overlay, overlay.files[path] != nil else { return "Templates/\(path)" }
        return "\(overlay.directory)/\(path)"
    }

    static func isBinary(_ path: String) -> Bool {
        [".png", ".jpg", ".jpeg", ".gif", ".ico", ".woff", ".woff2", ".mo"].contains { path.lowercased().hasSuffix($0) }
    }

    /// The template as runs of whole lines with and without tags; one piece when a tag spans
    /// lines, which a run of lines could cut.
    static func pieces(of text: String, source: String) throws(ForgeError) -> [CompiledTemplate.Piece] {
        let lines = TemplateLines(text)
        guard lines.tagsWithinLines else { return [.template(try parse(text, source: source))] }
        var pieces: [CompiledTemplate.Piece] = []
        var start = 0
        while start < lines.count {
            var end = start + 1
            while end < lines.count, lines.isTagged(end) == lines.isTagged(start) { end += 1 }
            let run = lines.text(from: start, to: end)
            pieces.append(lines.isTagged(start) ? .template(try parse(run, source: source)) : .text(run))
            start = end
        }
        return pieces
    }

    static func hasTags(_ text: String) -> Bool {
        ASCIIPattern.occurrences(of: TemplateLines.opener, in: Array(text.utf8)[...]) > 0
    }

    private static func parse(_ text: String, source: String) throws(ForgeError) -> MustacheTemplate {
        do {
            return try MustacheTemplate(string: delimiterPrefix + text)
        } catch {
            throw ForgeError("template does not parse: \(error)", at: SourceLocation(file: source))
        }
    }

    /// Mustache renders unknown names as empty text; a typo in a template would silently
    /// produce broken Python. Every tag is checked against the documented variables first.
    static func checkTags(in text: String, source: String, variables: [String: VariableKind]) throws(ForgeError) {
        var problems: [Diagnostic] = []
        for (lineNumber, tag) in tags(in: text) {
            let location = SourceLocation(file: source, line: lineNumber)
            guard let parsed = Self.parseTag(tag) else {
                problems.append(Diagnostic("unsupported tag <% \(tag) %>", at: location,
                                           fix: "templates use only <% name %> and <% transform(name) %>"))
                continue
            }
            let name = parsed.name
            guard let kind = variables[name] else {
                let hint = Suggestions.closest(to: name, in: Array(variables.keys)).map { "did you mean \($0)?" }
                problems.append(Diagnostic("unknown variable '\(name)'", at: location, fix: hint ?? "see the README's template variables"))
                continue
            }
            if let transform = parsed.transform, !kind.transforms.contains(transform) {
                let accepted = kind.transforms.isEmpty ? "none (insert it as <% \(name) %>)" : kind.transforms.sorted().joined(separator: ", ")
                problems.append(Diagnostic("transform '\(transform)' does not apply to '\(name)'", at: location,
                                           fix: "transforms for it: \(accepted)"))
            } else if parsed.transform == nil, kind != .plain {
                problems.append(Diagnostic("free text '\(name)' is inserted without an escaping transform", at: location,
                                           fix: "wrap it, e.g. <% py(\(name)) %>; transforms for it: " + kind.transforms.sorted().joined(separator: ", ")))
            }
        }
        if !problems.isEmpty { throw ForgeError(problems) }
    }

    /// `table.key` or `transform(table.key)`; nil for any other tag.
    static func parseTag(_ tag: String) -> (transform: String?, name: String)? {
        var transform: String?
        var name = Substring(tag)
        if let open = tag.firstIndex(of: "("), tag.hasSuffix(")") {
            let word = String(tag[..<open])
            guard ASCIIPattern.matches(word, first: ASCIIPattern.isLower, rest: ASCIIPattern.isLower) else { return nil }
            transform = word
            name = tag[tag.index(after: open)..<tag.index(before: tag.endIndex)]
        }
        let trimmed = name.trimming(.whitespaces)
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        let wordByte: (UInt8) -> Bool = { ASCIIPattern.isLower($0) || $0 == UInt8(ascii: "_") }
        guard parts.count == 2, parts.allSatisfy({ ASCIIPattern.matches($0, first: wordByte, rest: wordByte) }) else { return nil }
        return (transform, trimmed)
    }

    /// The inside of every `<% … %>` tag with its line number. A plain scan: templates are
    /// mostly tag-free text, and running a regex over every line dominated render time.
    static func tags(in text: String) -> [(line: Int, tag: String)] {
        var result: [(Int, String)] = []
        let bytes = Array(text.utf8)
        var line = 1
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") {
                line += 1
            } else if byte == UInt8(ascii: "<"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "%") {
                var end = index + 2
                while end + 1 < bytes.count, !(bytes[end] == UInt8(ascii: "%") && bytes[end + 1] == UInt8(ascii: ">")) { end += 1 }
                let inner = String(decoding: bytes[(index + 2)..<min(end, bytes.count)], as: UTF8.self)
                result.append((line, inner.trimming(.whitespaces)))
                line += inner.filter { $0 == "\n" }.count
                index = end + 2
                continue
            }
            index += 1
        }
        return result
    }

    /// Django loads catalogues from compiled `.mo` files; compile each rendered `.po`.
    private func compileCatalogues(in tree: inout PluginTree, sources: [String: String]) throws(ForgeError) {
        for path in tree.sortedPaths where path.hasSuffix(".po") {
            let text = String(decoding: tree.files[path]!, as: UTF8.self)
            do {
                tree.files[String(path.dropLast(3)) + ".mo"] = try GettextCatalog.parse(text).compiled()
            } catch {
                throw ForgeError("catalogue does not parse: \(error.message)", at: SourceLocation(file: sources[path] ?? path, line: error.line),
                                 fix: "write each entry as msgid \"…\" then msgstr \"…\", quotes closed, as `msgfmt --check` accepts")
            }
        }
    }
}
