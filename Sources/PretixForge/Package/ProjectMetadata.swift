import FoundationEssentials
import TOMLKit

/// Core metadata (PKG-INFO / METADATA 2.4) derived from the rendered `pyproject.toml`,
/// so the archives pretix-forge writes and a setuptools build of the same tree agree.
struct ProjectMetadata {
    var name: String
    var version: String
    var summary: String
    var authors: [(name: String?, email: String?)]
    var licenseExpression: String
    var licenseFiles: [String]
    var requiresPython: String?
    var keywords: [String]
    var classifiers: [String]
    var urls: [(label: String, url: String)]
    var dependencies: [String]
    var optionalDependencies: [(extra: String, requirements: [String])]
    var entryPoints: [(group: String, entries: [(name: String, value: String)])]
    var readme: String
    var readmeContentType: String

    struct Failure: Error {
        var message: String
    }
}

extension ProjectMetadata {
    init(pyproject: String, tree: PluginTree) throws(Failure) {
        let root: TOMLTable
        do { root = try TOMLTable(string: pyproject) } catch { throw Failure(message: "pyproject.toml does not parse: \(error)") }
        guard let project = root["project"]?.table else { throw Failure(message: "pyproject.toml has no [project] table") }
        func string(_ key: String) throws(Failure) -> String {
            guard let value = project[key]?.string else { throw Failure(message: "pyproject.toml: [project] \(key) must be a string") }
            return value
        }
        func strings(_ value: TOMLValueConvertible?) -> [String] {
            value?.array.map { $0.compactMap { $0.string } } ?? []
        }
        name = try string("name")
        version = try string("version")
        summary = try string("description")
        licenseExpression = try string("license")
        licenseFiles = strings(project["license-files"])
        requiresPython = project["requires-python"]?.string
        keywords = strings(project["keywords"])
        classifiers = strings(project["classifiers"])
        dependencies = strings(project["dependencies"])
        authors = (project["authors"]?.array ?? []).compactMap { $0.table }.map { ($0["name"]?.string, $0["email"]?.string) }
        urls = (project["urls"]?.table).map { table in table.keys.map { ($0, table[$0]?.string ?? "") } } ?? []
        optionalDependencies = (project["optional-dependencies"]?.table).map { table in
            table.keys.sorted().map { ($0, strings(table[$0])) }
        } ?? []
        entryPoints = (project["entry-points"]?.table).map { groups in
            groups.keys.sorted().map { group in
                let table = groups[group]?.table
                return (group, (table?.keys.sorted() ?? []).map { ($0, table?[$0]?.string ?? "") })
            }
        } ?? []
        let readmePath = try string("readme")
        guard let readmeData = tree.files[readmePath] else { throw Failure(message: "pyproject.toml names readme '\(readmePath)', which the tree lacks") }
        readme = String(decoding: readmeData, as: UTF8.self)
        readmeContentType = readmePath.hasSuffix(".md") ? "text/markdown" : "text/plain"
    }

    /// The RFC 822-style metadata file, in the conventional field order.
    func render() -> String {
        var lines = ["Metadata-Version: 2.4", "Name: \(name)", "Version: \(version)", "Summary: \(summary)"]
        let names = authors.compactMap { $0.email == nil ? $0.name : nil }
        if !names.isEmpty { lines.append("Author: \(names.joined(separator: ", "))") }
        let addresses = authors.compactMap { author in author.email.map { Self.mailbox(name: author.name, email: $0) } }
        if !addresses.isEmpty { lines.append("Author-email: \(addresses.joined(separator: ", "))") }
        lines.append("License-Expression: \(licenseExpression)")
        lines += licenseFiles.map { "License-File: \($0)" }
        lines += urls.map { "Project-URL: \($0.label), \($0.url)" }
        if !keywords.isEmpty { lines.append("Keywords: \(keywords.joined(separator: ","))") }
        lines += classifiers.map { "Classifier: \($0)" }
        if let requiresPython { lines.append("Requires-Python: \(requiresPython)") }
        lines += dependencies.map { "Requires-Dist: \($0)" }
        for (extra, requirements) in optionalDependencies {
            lines.append("Provides-Extra: \(extra)")
            lines += requirements.map { "Requires-Dist: \($0); extra == \"\(extra)\"" }
        }
        lines.append("Description-Content-Type: \(readmeContentType)")
        return lines.joined(separator: "\n") + "\n\n" + readme
    }

    /// `entry_points.txt` (INI) for the wheel.
    func renderEntryPoints() -> String {
        entryPoints.map { group in
            "[\(group.group)]\n" + group.entries.map { "\($0.name) = \($0.value)\n" }.joined()
        }.joined(separator: "\n")
    }

    /// An RFC 5322 mailbox, quoting the display name when it holds specials, as Python's
    /// email.headerregistry.Address does for setuptools.
    static func mailbox(name: String?, email: String) -> String {
        guard let name, !name.isEmpty else { return email }
        let specials = Set("()<>[]:;@\\,.\"")
        guard name.contains(where: { specials.contains($0) }) else { return "\(name) <\(email)>" }
        let quoted = name.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
        return "\"\(quoted)\" <\(email)>"
    }
}
