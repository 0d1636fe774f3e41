import FoundationEssentials
import Dispatch
import Glibc
import Mustache
import Synchronization

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
    public var files: [String: Data] {
        didSet { isBuiltIn = false }
    }
    /// The maintainer's overlay applied to the built-in templates, if any.
    public var overlay: Overlay?
    /// Exactly the templates compiled into the binary, which `PluginRenderer.builtIn` has compiled.
    public private(set) var isBuiltIn = false

    public init(files: [String: Data]) {
        self.files = files
    }

    /// The templates compiled into the binary, read once per run: `Pipeline.prepare` reads
    /// them while the arguments are parsed, and a command asking for them meanwhile waits for
    /// that instead of reading them a second time.
    public static let embedded: TemplateSet = {
        var templates = TemplateSet(files: EmbeddedFiles.folder("Templates"))
        templates.isBuiltIn = true
        return templates
    }()
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
        /// The text between tags, kept as it is, and each tag, parsed.
        enum Piece: Sendable {
            case text(String)
            case template(MustacheTemplate)
        }

        var path: String
        /// The file errors name (source(of:overlay:)).
        var source: String
        var pieces: [Piece]

        /// The file, or nil when a tag inserted free text without escaping it: checkTags makes
        /// that unreachable for the tags it sees, so this is the last line of defence. The marker
        /// such text renders as starts with U+0001; only the tags' outputs are searched for it.
        func render(_ context: [String: [String: Any]]) -> String? {
            var output = ""
            for piece in pieces {
                switch piece {
                case .text(let text):
                    output += text
                case .template(let template):
                    let value = template.render(context)
                    if value.utf8.contains(1), value.contains(ConfigText.unescapedMarker) { return nil }
                    output += value
                }
            }
            return output
        }
    }

    private let compiled: [CompiledTemplate]
    /// Files copied as they are: images and fonts, and text with no tag in it.
    private let verbatim: [(path: String, data: Data)]
    private let overlayDigest: String?
    /// Template path → the file errors name, for the catalogues (compiled after rendering).
    private let catalogueSources: [String: String]
    /// The shared HMAC vectors every tree's tests read, loaded with the templates.
    private let signatureVectors = EmbeddedFiles.data("Vectors/webhook-signatures.json")

    /// The built-in templates, compiled once per run (`Pipeline.prepare` starts it early).
    static let builtIn = Result { () throws(ForgeError) in try PluginRenderer(templates: .embedded) }

    /// A renderer for `templates`: the built-in one when they are the built-in templates.
    static func compiled(_ templates: TemplateSet) throws(ForgeError) -> PluginRenderer {
        templates.isBuiltIn ? try builtIn.get() : try PluginRenderer(templates: templates)
    }

    /// Checks and parses every template up front, reporting all problems together, so a
    /// batch of variants pays for parsing once. Each template is independent; they are parsed
    /// on all cores. A file without tags, or not UTF-8, is copied as it is.
    public init(templates: TemplateSet = .embedded) throws(ForgeError) {
        let variables = TemplateContext.variableKinds
        let entries = templates.files.sorted(by: { $0.key < $1.key })
        let outcomes = ConcurrentSlots<Result<CompiledTemplate, ForgeError>>(count: entries.count)
        let parsedTags = ParsedTags()
        DispatchQueue.concurrentPerform(iterations: entries.count) { index in
            let (path, data) = entries[index]
            guard !Self.isBinary(path) else { return }
            let bytes = [UInt8](data)
            let tags = Self.tags(in: bytes)
            guard !tags.isEmpty, String(validating: bytes, as: UTF8.self) != nil else { return }
            outcomes.set(index, Result { () throws(ForgeError) -> CompiledTemplate in
                let source = Self.source(of: path, overlay: templates.overlay)
                try Self.checkTags(tags, source: source, variables: variables)
                return CompiledTemplate(path: path, source: source, pieces: try Self.pieces(of: bytes, tags: tags, source: source, parsed: parsedTags))
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
        let outputs = ConcurrentSlots<String?>(count: compiled.count)
        let shared = ReadOnlyContext(values: context)
        DispatchQueue.concurrentPerform(iterations: compiled.count) { index in
            outputs.set(index, compiled[index].render(shared.values))
        }
        for (item, rendered) in zip(compiled, outputs.values) {
            guard let output = rendered ?? nil else {
                throw ForgeError("free text is inserted without an escaping transform", at: SourceLocation(file: item.source),
                                 fix: "wrap it, e.g. <% py(provider.public_name) %>")
            }
            tree.files[Self.outputPath(item.path, module: config.package.module)] = Data(output.utf8)
        }
        tree.files["LICENSE"] = Data(config.package.licenseText.utf8)
        if let logo = config.branding.logo {
            tree.files["\(config.package.module)/static/\(config.package.module)/\(logo.fileName)"] = logo.data
        }
        tree.files[Self.vectorsPath] = signatureVectors
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

    /// The template split at its tags: the text between them is kept as it is and each tag is
    /// parsed on its own. Templates hold variable tags only (checkTags), which Mustache renders
    /// in place without touching the text around them, so the pieces render as the whole file
    /// would. Parsing whole files, then runs of tagged lines, was most of a build's work (make
    /// bench, perf); the templates hold some 130 tags.
    static func pieces(of bytes: [UInt8], tags: [Tag], source: String, parsed: ParsedTags) throws(ForgeError) -> [CompiledTemplate.Piece] {
        var pieces: [CompiledTemplate.Piece] = []
        var textStart = 0
        for tag in tags {
            if tag.range.lowerBound > textStart {
                pieces.append(.text(String(decoding: bytes[textStart..<tag.range.lowerBound], as: UTF8.self)))
            }
            let location = SourceLocation(file: source, line: tag.line)
            pieces.append(.template(try parsed.template(String(decoding: bytes[tag.range], as: UTF8.self), at: location)))
            textStart = tag.range.upperBound
        }
        if textStart < bytes.count { pieces.append(.text(String(decoding: bytes[textStart...], as: UTF8.self))) }
        return pieces
    }

    /// Each distinct tag parsed once: the templates' 130 tags are 50 distinct ones.
    final class ParsedTags: Sendable {
        /// A closed tag as Mustache's own unescaped-variable tag, `{{& … }}`, which renders as
        /// the tag does under the prefix (no escaping, TEXT or not) without the prefix's pragma
        /// and delimiter change to parse: those were most of each parse. Anything else keeps the
        /// prefix, so Mustache reports it as before.
        private func mustacheSource(of tag: String) -> String {
            guard tag.hasPrefix(tagOpener), tag.hasSuffix(tagCloser), tag.count >= tagOpener.count + tagCloser.count else {
                return delimiterPrefix + tag
            }
            let inside = tag.dropFirst(tagOpener.count).dropLast(tagCloser.count)
            guard !inside.contains(where: { $0 == "{" || $0 == "}" || $0 == "%" }) else { return delimiterPrefix + tag }
            return "{{&" + inside + "}}"
        }

        private let parsed = Mutex<[String: MustacheTemplate]>([:])

        func template(_ tag: String, at location: SourceLocation) throws(ForgeError) -> MustacheTemplate {
            if let template = parsed.withLock({ $0[tag] }) { return template }
            let template: MustacheTemplate
            do {
                template = try MustacheTemplate(string: mustacheSource(of: tag))
            } catch {
                throw ForgeError("template does not parse: \(error)", at: location)
            }
            parsed.withLock { $0[tag] = template }
            return template
        }
    }

    /// Mustache renders unknown names as empty text; a typo in a template would silently
    /// produce broken Python. Every tag is checked against the documented variables first.
    static func checkTags(_ tags: [Tag], source: String, variables: [String: VariableKind]) throws(ForgeError) {
        var problems: [Diagnostic] = []
        for found in tags {
            let tag = found.inside
            let location = SourceLocation(file: source, line: found.line)
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

    /// A `<% … %>` tag in a template.
    struct Tag {
        /// Its bytes, delimiters included; an unclosed tag runs to the end of the file.
        var range: Range<Int>
        /// The line it starts on.
        var line: Int
        /// What it holds, without the delimiters and the blanks around it.
        var inside: String
    }

    /// Every tag of a template. A byte scan that jumps from one `<` to the next (memchr) and
    /// counts lines only up to each tag: templates are mostly tag-free text, and this runs over
    /// every template at each start.
    static func tags(in bytes: [UInt8]) -> [Tag] {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return [] }
            let percent = UInt8(ascii: "%"), close = UInt8(ascii: ">"), newline = UInt8(ascii: "\n")
            func newlines(_ range: Range<Int>) -> Int {
                var count = 0
                for index in range where buffer[index] == newline { count += 1 }
                return count
            }
            var result: [Tag] = []
            var line = 1, counted = 0, position = 0
            while position < buffer.count, let found = memchr(base + position, Int32(UInt8(ascii: "<")), buffer.count - position) {
                let index = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                guard index + 1 < buffer.count, buffer[index + 1] == percent else {
                    position = index + 1
                    continue
                }
                var end = index + 2
                while end + 1 < buffer.count, !(buffer[end] == percent && buffer[end + 1] == close) { end += 1 }
                let closed = end + 1 < buffer.count
                let upper = closed ? end + 2 : buffer.count
                line += newlines(counted..<index)
                let inside = String(decoding: buffer[(index + 2)..<(closed ? end : upper)], as: UTF8.self).trimming(.whitespaces)
                result.append(Tag(range: index..<upper, line: line, inside: inside))
                counted = index
                position = upper
            }
            return result
        }
    }

    /// Django loads catalogues from compiled `.mo` files; compile each rendered `.po`.
    /// One catalogue per language, each compiled on its own core: they were a serial tenth
    /// of a build between rendering and packaging. The first broken one, by path, is reported.
    private func compileCatalogues(in tree: inout PluginTree, sources: [String: String]) throws(ForgeError) {
        let paths = tree.sortedPaths.filter { $0.hasSuffix(".po") }
        let texts = paths.map { tree.files[$0]! }
        let outcomes = ConcurrentSlots<Result<Data, GettextCatalog.ParseError>>(count: paths.count)
        DispatchQueue.concurrentPerform(iterations: paths.count) { index in
            outcomes.set(index, Result { () throws(GettextCatalog.ParseError) in
                try GettextCatalog.parse(String(decoding: texts[index], as: UTF8.self)).compiled()
            })
        }
        for (path, outcome) in zip(paths, outcomes.values) {
            switch outcome! {
            case .success(let compiled):
                tree.files[String(path.dropLast(3)) + ".mo"] = compiled
            case .failure(let error):
                throw ForgeError("catalogue does not parse: \(error.message)", at: SourceLocation(file: sources[path] ?? path, line: error.line),
                                 fix: "write each entry as msgid \"…\" then msgstr \"…\", quotes closed, as `msgfmt --check` accepts")
            }
        }
    }
}
