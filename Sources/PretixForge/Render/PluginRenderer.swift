import Foundation
import Mustache

/// A rendered plugin source tree: relative path → bytes, in memory until a stage writes it.
public struct PluginTree: Sendable, Equatable {
    public var files: [String: Data]

    public init(files: [String: Data] = [:]) {
        self.files = files
    }

    /// Paths in byte order, the order archives and comparisons use.
    public var sortedPaths: [String] {
        files.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

/// A set of template files keyed by their path under `Templates/`.
public struct TemplateSet: Sendable {
    public var files: [String: Data]

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
    static let delimiterPrefix = "{{% CONTENT_TYPE: TEXT }}{{=<% %>=}}"
    static let vectorsPath = "tests/webhook-signatures.json"

    public var templates: TemplateSet

    public init(templates: TemplateSet = .embedded) {
        self.templates = templates
    }

    public func render(_ config: ForgeConfig) throws(ForgeError) -> PluginTree {
        let context = TemplateContext.make(config)
        let variables = TemplateContext.variableNames(context)
        var tree = PluginTree()
        var problems: [Diagnostic] = []
        for (templatePath, data) in templates.files.sorted(by: { $0.key < $1.key }) {
            let outputPath = templatePath.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0 == Self.moduleSegment ? config.package.module : String($0) }
                .joined(separator: "/")
            guard let text = String(data: data, encoding: .utf8), !Self.isBinary(templatePath) else {
                tree.files[outputPath] = data
                continue
            }
            do {
                tree.files[outputPath] = Data(try renderTemplate(text, path: templatePath, context: context, variables: variables).utf8)
            } catch {
                problems += error.diagnostics
            }
        }
        if !problems.isEmpty { throw ForgeError(problems) }
        tree.files["LICENSE"] = Data(config.package.licenseText.utf8)
        if let logo = config.branding.logo {
            tree.files["\(config.package.module)/static/\(config.package.module)/\(logo.fileName)"] = logo.data
        }
        tree.files[Self.vectorsPath] = EmbeddedFiles.data("Vectors/webhook-signatures.json")
        try compileCatalogues(in: &tree)
        return tree
    }

    static func isBinary(_ path: String) -> Bool {
        [".png", ".jpg", ".jpeg", ".gif", ".ico", ".woff", ".woff2", ".mo"].contains { path.lowercased().hasSuffix($0) }
    }

    private func renderTemplate(_ text: String, path: String, context: [String: [String: Any]],
                                variables: [String: VariableKind]) throws(ForgeError) -> String {
        try Self.checkTags(in: text, path: path, variables: variables)
        let template: MustacheTemplate
        do {
            template = try MustacheTemplate(string: Self.delimiterPrefix + text)
        } catch {
            throw ForgeError("template does not parse: \(error)", at: SourceLocation(file: "Templates/\(path)"))
        }
        let output = template.render(context)
        if output.contains(ConfigText.unescapedMarker) {
            throw ForgeError("free text is inserted without an escaping transform",
                             at: SourceLocation(file: "Templates/\(path)"),
                             fix: "wrap it, e.g. <% py(provider.public_name) %>; transforms: " + ConfigText.transforms.sorted().joined(separator: ", "))
        }
        return output
    }

    /// Mustache renders unknown names as empty text; a typo in a template would silently
    /// produce broken Python. Every tag is checked against the documented variables first.
    static func checkTags(in text: String, path: String, variables: [String: VariableKind]) throws(ForgeError) {
        var problems: [Diagnostic] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            for match in line.matches(of: /<%\s*(.*?)\s*%>/) {
                let location = SourceLocation(file: "Templates/\(path)", line: index + 1)
                let tag = String(match.output.1)
                guard let parsed = tag.wholeMatch(of: /(?:([a-z]+)\(\s*)?([a-z_]+\.[a-z_]+)\s*\)?/) else {
                    problems.append(Diagnostic("unsupported tag <% \(tag) %>", at: location,
                                               fix: "templates use only <% name %> and <% transform(name) %>"))
                    continue
                }
                let name = String(parsed.output.2)
                guard let kind = variables[name] else {
                    let hint = Suggestions.closest(to: name, in: Array(variables.keys)).map { "did you mean \($0)?" }
                    problems.append(Diagnostic("unknown variable '\(name)'", at: location, fix: hint ?? "see the README's template variables"))
                    continue
                }
                if let transform = parsed.output.1, !kind.transforms.contains(String(transform)) {
                    let accepted = kind.transforms.isEmpty ? "none (insert it as <% \(name) %>)" : kind.transforms.sorted().joined(separator: ", ")
                    problems.append(Diagnostic("transform '\(transform)' does not apply to '\(name)'", at: location,
                                               fix: "transforms for it: \(accepted)"))
                } else if parsed.output.1 == nil, kind != .plain {
                    problems.append(Diagnostic("free text '\(name)' is inserted without an escaping transform", at: location,
                                               fix: "wrap it, e.g. <% py(\(name)) %>; transforms for it: " + kind.transforms.sorted().joined(separator: ", ")))
                }
            }
        }
        if !problems.isEmpty { throw ForgeError(problems) }
    }

    /// Django loads catalogues from compiled `.mo` files; compile each rendered `.po`.
    private func compileCatalogues(in tree: inout PluginTree) throws(ForgeError) {
        for path in tree.sortedPaths where path.hasSuffix(".po") {
            let source = String(decoding: tree.files[path]!, as: UTF8.self)
            do {
                tree.files[String(path.dropLast(3)) + ".mo"] = try GettextCatalog.parse(source).compiled()
            } catch {
                throw ForgeError("catalogue does not parse: \(error.message)", at: SourceLocation(file: path, line: error.line))
            }
        }
    }
}
